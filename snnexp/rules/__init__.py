"""Learning rules as pure functions (no Lightning, no autograd): imported by models and learners alike."""
from snnexp.rules.stdp import STDPParams, Traces, apply_dw_, init_weights_, norm_total, normalise_, stdp_sequence, stdp_step

__all__ = ["STDPParams", "Traces", "apply_dw_", "init_weights_", "norm_total", "normalise_", "stdp_sequence", "stdp_step"]

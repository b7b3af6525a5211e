"""Learning rules as pure functions (no Lightning, no autograd): imported by models and learners alike."""
from snnexp.rules.stdp import Plasticity, STDPParams, Traces, apply_dw_, init_weights_, normalise_, stdp_sequence, stdp_step

__all__ = ["Plasticity", "STDPParams", "Traces", "apply_dw_", "init_weights_", "normalise_", "stdp_sequence", "stdp_step"]

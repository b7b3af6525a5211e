from snnexp.metrics.activity import ActivityMonitor
from snnexp.metrics.energy import OpEnergy, run_metrics
from snnexp.metrics.static import connection_sparsity, footprint_bytes, static_metrics
from snnexp.metrics.synops import dense_ops, is_spikes, synaptic_ops

__all__ = ["ActivityMonitor", "OpEnergy", "connection_sparsity", "dense_ops", "footprint_bytes", "is_spikes",
           "run_metrics", "static_metrics", "synaptic_ops"]

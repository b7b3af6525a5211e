from snnexp.metrics.activity import ActivityMonitor, synaptic_ops

__all__ = ["ActivityMonitor", "synaptic_ops"]

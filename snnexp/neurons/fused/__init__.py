from snnexp.neurons.fused.dispatch import available, backend_for, leaky_fire
from snnexp.neurons.fused.spec import LeakySpec

__all__ = ["LeakySpec", "available", "backend_for", "leaky_fire"]

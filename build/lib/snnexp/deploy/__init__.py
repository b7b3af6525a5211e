from snnexp.deploy.base import Target
from snnexp.deploy.cpu import CPUTarget
from snnexp.deploy.gpu import GPUTarget

__all__ = ["CPUTarget", "GPUTarget", "Target"]

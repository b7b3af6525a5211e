from snnexp.models.base import SpikingModel
from snnexp.models.csnn import CSNN
from snnexp.models.mlp import MLP

__all__ = ["CSNN", "MLP", "SpikingModel"]

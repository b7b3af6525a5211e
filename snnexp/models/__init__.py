from snnexp.models.base import SpikingModel
from snnexp.models.csnn import CSNN
from snnexp.models.diehl_cook import DiehlCook
from snnexp.models.mlp import MLP
from snnexp.models.spikify import run_steps, spikify
from snnexp.network.layers import SpikingMaxPool2d
from snnexp.models.wta import WTA

__all__ = ["CSNN", "DiehlCook", "MLP", "SpikingMaxPool2d", "SpikingModel", "run_steps", "spikify", "WTA"]

from snnexp.learners.ann2snn import ANN2SNN
from snnexp.learners.bptt import BPTT
from snnexp.learners.hybrid import Hybrid
from snnexp.learners.stdp import STDP

__all__ = ["ANN2SNN", "BPTT", "Hybrid", "STDP"]

from snnexp.network import layers  # noqa: F401 (registers the built-in layer kinds)
from snnexp.network.blocks import Recurrent, Residual, run_layers
from snnexp.network.graph import INPUT, Layered, Network, Node
from snnexp.network.kinds import LayerKind, Role, Unsupported, kind_of, register

__all__ = ["INPUT", "LayerKind", "Layered", "Network", "Node", "Recurrent", "Residual", "Role", "Unsupported",
           "kind_of", "register", "run_layers"]

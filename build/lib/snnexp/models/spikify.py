"""`spikify(model, neuron)`: the same network with a neuron layer wherever it had an activation module.

What counts as an activation: the element-wise nonlinearities of `torch.nn` listed in
`ACTIVATIONS` (ReLU and its variants, the sigmoid/tanh family, GELU/SiLU/Mish, ...).
Softmax/LogSoftmax are not: they normalise across a dimension and belong to the loss, not to a
layer a neuron could replace. Only ReLU has the rate interpretation of ANN->SNN conversion (an
IF neuron's rate x threshold -> ReLU(x), Rueckauer et al. 2017); the others are replaced too, so a
model can be turned into an SNN for spike-based training (e.g. BPTT) whatever its activation.

Activations a module list cannot show are reported instead of being skipped: each user-defined
`forward` is read with `ast` (robust to control flow that defeats torch.fx tracing) and a call
such as `F.relu(x)`, `torch.sigmoid(x)`, `x.tanh()` raises (or warns, `on_functional="warn"`),
as does one activation module called twice in a forward (a neuron keeps state per call site).

A neuron runs over time; a plain model has no time loop. `run_steps(model, x_seq)` runs any
spikified model over x_seq [T, N, ...] one step at a time; a spikified nn.Sequential can also
be wrapped as `SpikingModel(list(seq), step_mode="s", readout="membrane")`.
"""
from __future__ import annotations

import ast
import copy
import inspect
import textwrap
import warnings
from typing import Callable

import torch
from torch import Tensor, nn

from snnexp.errors import check
from snnexp.neurons.base import STEP_MODES, Neuron, end_sequences, reset_states, set_step_mode

ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus,
    nn.LogSigmoid, nn.Softsign, nn.Tanhshrink, nn.Threshold,
)
# Names of functional forms (torch.relu, F.relu, x.relu(), F.leaky_relu_, ...) looked for in forward().
FUNCTIONAL_NAMES = frozenset({
    "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "prelu", "rrelu", "rrelu_", "elu", "elu_",
    "selu", "selu_", "celu", "celu_", "gelu", "silu", "mish", "sigmoid", "sigmoid_", "tanh", "tanh_",
    "hardtanh", "hardtanh_", "hardswish", "hardsigmoid", "softplus", "logsigmoid", "softsign",
    "tanhshrink", "threshold", "threshold_",
})
ON_FUNCTIONAL = ("error", "warn")


def spikify(
    model: nn.Module,
    neuron: Callable[[], nn.Module],
    activations: tuple[type[nn.Module], ...] = ACTIVATIONS,
    on_functional: str = "error",
) -> nn.Module:
    """A copy of `model` with `neuron()` in place of every activation module; the rest is kept.

    Each place an activation sits (also one instance registered under two names) gets its own
    neuron. Weights, other layers, parameter count (unless an activation had parameters, e.g.
    PReLU) and train/eval mode are unchanged; `model` itself is not modified. The neurons are
    put into `model.step_mode` if it has one (a SpikingModel), else into single-step mode for
    `run_steps`. Activations used as functions in a forward are reported: `on_functional`
    "error" raises ValueError naming them, "warn" warns.
    """
    check(on_functional in ON_FUNCTIONAL, "on_functional", on_functional, f"choose one of {list(ON_FUNCTIONAL)}")
    problems = find_functional_activations(model, activations)
    if problems:
        message = ("spikify cannot replace activations called as functions or reused; give each its own "
                   "module (e.g. self.act1 = nn.ReLU()):\n  " + "\n  ".join(problems))
        if on_functional == "error":
            raise ValueError(message)
        warnings.warn(message, stacklevel=2)
    out = copy.deepcopy(model)
    sites = [name for name, m in out.named_modules(remove_duplicate=False)
             if name and isinstance(m, activations) and not isinstance(m, Neuron)]
    for name in sites:
        parent_name, _, child = name.rpartition(".")
        parent = out.get_submodule(parent_name) if parent_name else out
        layer = neuron()
        layer.train(out.training)
        setattr(parent, child, layer)
    step_mode = getattr(model, "step_mode", None)
    set_step_mode(out, step_mode if step_mode in STEP_MODES else "s")
    return out


def find_functional_activations(
    model: nn.Module, activations: tuple[type[nn.Module], ...] = ACTIVATIONS
) -> list[str]:
    """Activations in user-defined forward() methods that spikify cannot replace, as readable lines.

    Finds calls such as `F.relu(x)`, `torch.sigmoid(x)`, `x.tanh()` and activation submodules called
    more than once (`self.relu` after two convs, as in torchvision's BasicBlock). torch's own
    modules and snnexp neurons are trusted; a forward whose source cannot be read is warned about.
    """
    problems: list[str] = []
    seen: set[type] = set()
    for module in model.modules():
        cls = type(module)
        if cls in seen or cls.__module__.startswith("torch.") or isinstance(module, Neuron):
            continue
        seen.add(cls)
        try:
            source = textwrap.dedent(inspect.getsource(cls.forward))
            first_line = inspect.getsourcelines(cls.forward)[1]
        except (OSError, TypeError):
            warnings.warn(f"spikify: cannot read the source of {cls.__qualname__}.forward; "
                          "activations called as functions there would go unnoticed", stacklevel=3)
            continue
        problems += _scan_forward(module, ast.parse(source), first_line, activations)
    return problems


def _scan_forward(module: nn.Module, tree: ast.AST, first_line: int,
                  activations: tuple[type[nn.Module], ...]) -> list[str]:
    """Functional activation calls and reused activation submodules in one parsed forward()."""
    where = type(module).__qualname__ + ".forward"
    problems, module_calls = [], {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        line = first_line + node.lineno - 1
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
            attr = getattr(module, func.attr, None)
            if isinstance(attr, nn.Module):  # a submodule call: an activation module is fine once
                if isinstance(attr, activations):
                    module_calls.setdefault(func.attr, []).append(line)
                continue
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name in FUNCTIONAL_NAMES:
            problems.append(f"{where} line {line}: {ast.unparse(node)}")
    for attr, lines in module_calls.items():
        if len(lines) > 1:
            problems.append(f"{where} lines {lines}: self.{attr} is called {len(lines)} times "
                            "(one neuron would mix the states of every call)")
    return problems


@torch.no_grad()
def run_steps(model: nn.Module, x_seq: Tensor) -> Tensor:
    """Run a spikified model over x_seq [T, N, ...] one step at a time -> [T, N, ...] outputs.

    Every neuron starts from rest and is put into single-step mode, so any forward() (branches,
    skips) works unchanged per step. No gradient: for training, wrap a Sequential in SpikingModel.
    """
    set_step_mode(model, "s")
    reset_states(model)
    out = torch.stack([model(x_t) for x_t in x_seq])
    end_sequences(model)
    return out

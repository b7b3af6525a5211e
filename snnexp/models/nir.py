"""A network read from a NIR graph file (`model=nir model.path=<graph.nir>`).

Which graphs and nodes it reads: `snnexp.models.nir_import` (chains, residual forks and joins,
neurons reading their own output).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import nir
from torch import nn

from snnexp.errors import ConfigError, check
from snnexp.models.base import NeuronFactory, SpikingModel
from snnexp.models.nir_import import layers_from_nir, readout


GRAPHS = Path(__file__).parent / "graphs"  # example graphs shipped with the package


def example_graph(path: str | None) -> str | None:
    """`path` itself, or the shipped example of that name ("digits_mlp") when no such file exists."""
    if path is None or Path(str(path)).is_file():
        return path
    shipped = GRAPHS / f"{Path(str(path)).stem}.nir"
    return str(shipped) if shipped.is_file() else path


class NIRModel(SpikingModel):
    """The layers of a NIR graph (`snnexp.models.nir_import`) as a SpikingModel any learner or
    target takes. The graph defines its own neurons, so the `neuron` group is not used.

    path: the .nir file; dt: seconds per step (null: the graph's metadata, else 1e-4).
    in_shape/num_classes come from the datamodule and must agree with the graph's Input and
    Output (a flat graph input takes an image of as many pixels, flattened). The readout is
    "membrane" when the last neuron layer is a leaky integrator, else "spikes".
    """

    def __init__(self, neuron: NeuronFactory | None, in_shape: Sequence[int], num_classes: int, path: str,
                 dt: float | None = None, step_mode: str = "m"):
        path = example_graph(path)
        check(path is not None and Path(str(path)).is_file(), "model.path", path,
              f"must name a NIR graph file (.nir, written by nir.write or snnexp.deploy.nir.export_nir) or one "
              f"of the examples shipped in snnexp/models/graphs: {sorted(p.stem for p in GRAPHS.glob('*.nir'))}")
        check(dt is None or float(dt) > 0, "model.dt", dt, "must be null (the graph's) or > 0 seconds per step")
        try:
            graph = nir.read(str(path))
        except Exception as e:  # h5py/nir errors for a file that is not a NIR graph
            raise ConfigError(f"model.path={path} could not be read as a NIR graph: {type(e).__name__}: {e}") from None
        imported = layers_from_nir(graph, dt)
        layers = imported.layers
        in_shape = tuple(int(n) for n in in_shape)
        if imported.in_shape != in_shape:
            if len(imported.in_shape) == 1 and imported.in_shape[0] == math.prod(in_shape):
                layers = [nn.Flatten(), *layers]  # a flat graph input takes the image flattened
            else:
                raise ConfigError(f"model.path={path}: the graph's Input takes shape {imported.in_shape}, the dataset "
                                  f"gives in_shape {in_shape}; choose the dataset the graph was made for")
        if math.prod(imported.out_shape) != int(num_classes) or len(imported.out_shape) != 1:
            raise ConfigError(f"model.path={path}: the graph's Output has shape {imported.out_shape}, the dataset "
                              f"has {num_classes} classes")
        try:
            kind = readout(layers)
        except ConfigError as e:
            raise ConfigError(f"model.path={path}: {e}") from None
        super().__init__(layers, step_mode, kind)
        self.path, self.dt, self.notes = str(path), imported.dt, imported.notes
        self.node_names = imported.names

    def extra_repr(self) -> str:
        return f"path={self.path}, dt={self.dt:g}"

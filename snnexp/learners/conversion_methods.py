"""The ANN->SNN methods (`learner/method`): one small object each, with its own keys (`learner.method.*`).

The ANN2SNN learner (`snnexp.learners.ann2snn`) trains an ANN, converts it and tests the SNN over T;
a method says what differs (`ConversionMethod`):
- what the ANN trains with (`trained`): the model's ANN counterpart, or QCFS activations in it;
- how it converts: the conversion neuron (`neuron`), and the normalised ReLU network that `to_snn`
  converts with the ANN its SNN approximates (`normalised`);
- what it does after conversion (`converted`): calibration makes one SNN per T, tested beside the
  uncalibrated one (`test_networks`, `curves`).

- rate (Rueckauer et al. 2017): the ReLU ANN normalised by its activations' percentiles on training
  data (learner.percentile); IF with reset by subtraction. Needs hundreds of steps.
- qcfs (Bu et al. 2022, `snnexp.learners.qcfs`): the ANN trains with the QCFS activation (levels L,
  a threshold learnt per layer); each threshold becomes the IF threshold, and every IF neuron
  starts at half of it. Close to its ANN at T ~ L.
- calibrate (Li et al. 2021, `snnexp.learners.calibration`): its `base` method's conversion (rate or
  qcfs: `learner/method/base`), then layer-wise bias (light) or weight-and-bias (advanced)
  calibration on `samples` training images, once for every T in T_list.
"""
from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, NamedTuple

from torch import Tensor, nn

from snnexp.errors import check
from snnexp.learners import qcfs
from snnexp.learners.calibration import MODES, calibrate, mean_errors
from snnexp.learners.calibration import chain as calibration_chain
from snnexp.learners.conversion import Scales, normalise
from snnexp.neurons.iaf import IF

NeuronFactory = Callable[..., nn.Module]
ToSNN = Callable[[nn.Sequential], nn.Sequential]  # a normalised ANN -> its SNN (the learner's to_snn)
Curve = dict[int, tuple[float, float]]  # T -> (test accuracy, SynOps per sample)
DataScales = Callable[[nn.Sequential], Scales]  # a network -> its activations' percentiles on training data


class Inputs(NamedTuple):
    """What the learner offers a method after conversion (calibration's data)."""

    images: Callable[[int], Tensor]  # n -> n training images [n, ...], drawn with the learner's seed
    encode: Callable[[Tensor], Tensor]  # images [N, ...] -> the SNN's input [max(T_list), N, ...]
    T_list: list[int]
    seed: int


class ConversionMethod(ABC):
    """One ANN->SNN method. Keys are the constructor's arguments; `validate` checks their values."""

    name: ClassVar[str]  # the option in conf/learner/method/; conversion/method in results.json

    def __init__(self) -> None:
        """No keys (rate's case): declared, so the config check refuses any key given to it (snnexp.typecheck)."""

    @property
    def max_pool(self) -> str:
        """learner.max_pool when it is null: keep max-pools (the SNN gets a spiking gate)."""
        return "spiking"

    def validate(self, key: str) -> None:
        """ConfigError naming `key`.<argument> for a value out of range (`key`: this method's config path)."""

    def settings(self) -> dict[str, Any]:
        """Its name and keys, as plain values (the learner's hyper-parameters)."""
        return {"name": self.name}

    def details(self) -> str:
        """What the settings line of conversion.md adds after `method=<name>`."""
        return ""

    def trained(self, ann: nn.Sequential, bias: bool) -> nn.Sequential:
        """The ANN that trains, from the model's ANN counterpart `ann` (ReLU; learner.bias: `bias`);
        refuses here, before training, what this method cannot convert."""
        return ann

    def neuron(self, neuron: NeuronFactory) -> NeuronFactory:
        """The factory of the SNN's neurons, from learner.neuron's."""
        return neuron

    def relu(self, folded: nn.Sequential) -> nn.Sequential:
        """The trained ANN (BN folded) with ReLU activations: the layers `to_snn` converts."""
        return folded

    @abstractmethod
    def normalised(self, folded: nn.Sequential, data_scales: DataScales | None, spiking_out: bool
                   ) -> tuple[nn.Sequential, nn.Sequential, Scales]:
        """(the normalised ReLU network `to_snn` converts, the ANN its SNN approximates, the scales used)
        for the trained ANN `folded` (BN folded). data_scales: None when learner.percentile is null;
        spiking_out: the SNN ends in spiking neurons (model.readout=spikes)."""

    def converted(self, source: nn.Sequential, reference: nn.Sequential, to_snn: ToSNN, inputs: Inputs
                  ) -> nn.Sequential:
        """The SNN that goes into the experiment's model (tested at every T in T_list)."""
        return to_snn(source)

    def test_networks(self, T_max: int) -> dict[str, tuple[nn.Module, int]]:
        """Networks tested beside the model's SNN: name -> (SNN, steps to run)."""
        return {}

    def curves(self, snn: Curve, computed: Callable[[str, list[int]], Curve], T_list: list[int]) -> dict[str, Curve]:
        """Logged curves (`<name>/test/acc/T<T>`) from the model's SNN curve and `computed(network name, Ts)`."""
        return {"snn": snn}

    def labels(self) -> dict[str, str]:
        """Curve name -> its label in conversion.md and acc_vs_T.png; the model's SNN first."""
        return {"snn": f"SNN ({self.name})"}

    def results(self, ann: nn.Sequential) -> dict[str, Any]:
        """What it adds to results.json, from the trained ANN `ann`."""
        return {}


class RateMethod(ConversionMethod):
    """Rueckauer et al. 2017: the ReLU ANN, normalised by learner.percentile of its activations (or not at all)."""

    name = "rate"

    def normalised(self, folded, data_scales, spiking_out):
        if data_scales is None:
            return folded, folded, {}
        scales = data_scales(folded)
        source = normalise(folded, scales, output=spiking_out)
        return source, source, scales


class QCFSMethod(ConversionMethod):
    """Bu et al. 2022: the ANN trains with QCFS(levels, threshold) activations (`snnexp.learners.qcfs`).

    levels: L, quantisation levels (the SNN matches its ANN best at T ~ L). threshold: every QCFS
    layer's initial lambda (learnt). Data percentiles only scale a spiking readout: the learnt
    lambdas are the hidden layers' scales. Max-pools train as average pools unless learner.max_pool says.
    """

    name = "qcfs"

    def __init__(self, levels: int = 8, threshold: float = 4.0):
        self.levels = int(levels)
        self.threshold = float(threshold)

    @property
    def max_pool(self) -> str:
        return "avg"  # linear, so each IF layer sees the currents its QCFS layer pooled (snnexp.learners.qcfs)

    def validate(self, key: str) -> None:
        check(self.levels >= 1, f"{key}.levels", self.levels, "must be >= 1 quantisation levels")
        check(self.threshold > 0, f"{key}.threshold", self.threshold, "must be > 0 (the initial lambda)")

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "levels": self.levels, "threshold": self.threshold}

    def details(self) -> str:
        return f", L={self.levels}"

    def trained(self, ann, bias):
        return qcfs.with_qcfs(ann, self.levels, self.threshold)

    def neuron(self, neuron):
        probe = neuron()  # the zero-error argument needs IF, reset by subtraction, v(0) = theta/2
        check(isinstance(probe, IF) and probe.reset_mode == "subtract", "learner.neuron", type(probe).__name__,
              "QCFS converts to IF neurons with reset: subtract (their membrane starts at threshold/2)")
        return functools.partial(neuron, v_init=float(probe.v_threshold) / 2)

    def relu(self, folded):
        return qcfs.as_relu(folded)[0]

    def normalised(self, folded, data_scales, spiking_out):
        relu, lambdas = qcfs.as_relu(folded)
        data = data_scales(folded) if data_scales is not None and spiking_out else {}
        scales = {**data, **lambdas}
        source = normalise(relu, scales, output=spiking_out)
        return source, qcfs.as_qcfs(source, self.levels), scales

    def results(self, ann):
        return {"conversion/qcfs_thresholds": list(qcfs.thresholds(ann).values())}


class CalibrateMethod(ConversionMethod):
    """Li et al. 2021: `base`'s conversion, then layer-wise calibration (`snnexp.learners.calibration`).

    mode: light (biases) or advanced (weights, then biases); samples: training images it calibrates
    on; iters, lr: the advanced weight fit's Adam steps and learning rate. One calibrated SNN per T
    in T_list; the model gets the one for the largest T, and every T is tested on its own.
    """

    name = "calibrate"

    def __init__(self, base: ConversionMethod, mode: str = "light", samples: int = 512, iters: int = 300,
                 lr: float = 1e-3):
        self.base = base
        self.mode = mode
        self.samples = int(samples)
        self.iters = int(iters)
        self.lr = float(lr)
        self.uncalibrated: nn.Sequential | None = None  # the base conversion's SNN
        self.calibrated: dict[int, nn.Sequential] = {}  # T -> the SNN calibrated for T
        self.errors: dict[int, dict[str, list[float]]] = {}  # T -> mean error per layer before and after

    @property
    def max_pool(self) -> str:
        return self.base.max_pool

    def validate(self, key: str) -> None:
        check(self.mode in MODES, f"{key}.mode", self.mode, f"choose one of {list(MODES)}")
        check(self.samples >= 1, f"{key}.samples", self.samples, "must be >= 1")
        check(self.iters >= 0, f"{key}.iters", self.iters, "must be >= 0 Adam steps")
        check(self.lr > 0, f"{key}.lr", self.lr, "must be > 0")
        check(not isinstance(self.base, CalibrateMethod), f"{key}.base", self.base.name,
              "calibrate a rate or qcfs conversion: learner/method/base=rate|qcfs")
        self.base.validate(f"{key}.base")

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "base": self.base.settings(), "mode": self.mode, "samples": self.samples,
                "iters": self.iters, "lr": self.lr}

    def details(self) -> str:
        return f"{self.base.details()}, calib_samples={self.samples}"

    def trained(self, ann, bias):
        check(bias, "learner.bias", bias, "calibration corrects biases: use learner.bias=true with "
              "learner/method=calibrate")
        ann = self.base.trained(ann, bias)
        calibration_chain(ann)  # refuses a residual network before training, with the reason
        return ann

    def neuron(self, neuron):
        return self.base.neuron(neuron)

    def relu(self, folded):
        return self.base.relu(folded)

    def normalised(self, folded, data_scales, spiking_out):
        return self.base.normalised(folded, data_scales, spiking_out)

    def converted(self, source, reference, to_snn, inputs):
        self.uncalibrated = to_snn(source)
        x = inputs.images(self.samples)
        x_seq = inputs.encode(x)
        self.calibrated, self.errors = {}, {}
        for T in inputs.T_list:
            calibrated = calibrate(source, reference, to_snn, x, x_seq[:T], mode=self.mode, iters=self.iters,
                                   lr=self.lr, seed=inputs.seed)
            self.errors[T] = {"before": mean_errors(source, reference, to_snn, x, x_seq[:T]),
                              "after": mean_errors(calibrated, reference, to_snn, x, x_seq[:T])}
            self.calibrated[T] = to_snn(calibrated)
        return self.calibrated[inputs.T_list[-1]]

    def test_networks(self, T_max):
        smaller = {f"T{t}": (net, t) for t, net in self.calibrated.items() if t < T_max}  # the model holds T_max's
        return {"base": (self.uncalibrated, T_max), **smaller}

    def curves(self, snn, computed, T_list):
        own = {t: computed(f"T{t}", [t])[t] for t in T_list if t < T_list[-1]}  # each T from the SNN calibrated for it
        return {"base": computed("base", T_list), "snn": {**snn, **own}}

    def labels(self):
        return {"snn": f"SNN ({self.base.name} + {self.mode} calibration)",
                "base": f"SNN ({self.base.name}, uncalibrated)"}

    def results(self, ann):
        return {**self.base.results(ann), "calibration/error": {f"T{t}": e for t, e in self.errors.items()}}

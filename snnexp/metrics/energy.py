"""An energy estimate per sample from the operation counts: E = ACs * e_AC + MACs * e_MAC.

The per-operation energies are config values (`energy.ac_pj`, `energy.mac_pj` in config.yaml)
with their source named (`energy.source`). The default is the figure most SNN papers use:
Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm CMOS, 32-bit float: an add 0.9 pJ
(one accumulate per spike input), a multiply 3.7 pJ + add = 4.6 pJ (one MAC per analog input).
It counts synaptic arithmetic only: no memory access, neuron updates or data movement, which
dominate on real chips; compare estimates, not chips.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from torch import nn

from snnexp.errors import check
from snnexp.metrics.static import static_metrics


@dataclass(frozen=True)
class OpEnergy:
    """Energy of one accumulate (spike input) and of one multiply-accumulate (analog input), in pJ."""

    ac_pj: float = 0.9
    mac_pj: float = 4.6
    source: str = "Horowitz 2014 (ISSCC), 45 nm, 32-bit float"

    def __post_init__(self):
        check(float(self.ac_pj) >= 0, "energy.ac_pj", self.ac_pj, "must be >= 0 pJ")
        check(float(self.mac_pj) >= 0, "energy.mac_pj", self.mac_pj, "must be >= 0 pJ")

    def per_sample_nj(self, acs: float, macs: float) -> float:
        """Energy in nJ for `acs` accumulates and `macs` multiply-accumulates."""
        return (acs * float(self.ac_pj) + macs * float(self.mac_pj)) * 1e-3


def run_metrics(model: nn.Module, results: Mapping[str, Any], energy: Mapping[str, Any] | None = None,
                stage: str = "test") -> dict[str, Any]:
    """What experiment.run adds to results.json after testing: the static metrics of `model` and,
    from the stage's `synops/ac` and `synops/mac`, `<stage>/energy_nj` with the energies used (and
    `<stage>/block/<block>/energy_nj` from each block's counts)."""
    e = OpEnergy(**dict(energy or {}))
    out: dict[str, Any] = dict(static_metrics(model))
    acs, macs = results.get(f"{stage}/synops/ac"), results.get(f"{stage}/synops/mac")
    if acs is not None and macs is not None:
        out[f"{stage}/energy_nj"] = e.per_sample_nj(acs, macs)
        out.update({"energy/ac_pj": float(e.ac_pj), "energy/mac_pj": float(e.mac_pj), "energy/source": e.source})
        for key, block_acs in results.items():
            if key.startswith(f"{stage}/block/") and key.endswith("/synops/ac"):
                block = key[:-len("/synops/ac")]
                out[f"{block}/energy_nj"] = e.per_sample_nj(block_acs, results.get(f"{block}/synops/mac", 0.0))
    return out

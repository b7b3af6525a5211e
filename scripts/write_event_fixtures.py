"""Write the event data the quick presets run on, where the real sets are not on the machine:
`python scripts/write_event_fixtures.py [OUT]` (default outputs/fixtures).

- OUT/shd_order/SHD/shd_{train,test}.h5: an SHD-format task (the files as Zenke's lab publishes them)
  whose 20 classes are ordered pairs of channel bands bursting 0.3 s apart, so only a network with
  memory tells (a, b) from (b, a): experiment=shd_rsnn_quick.
The writers are the test suite's (tests/data/event_files.py), so the presets run what the tests check.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.data.event_files import write_shd_order  # noqa: E402


def main(out: Path) -> None:
    root = write_shd_order(out / "shd_order", n_train=400, n_test=100)
    print(f"wrote {root / 'SHD'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "outputs" / "fixtures")

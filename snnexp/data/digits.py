"""scikit-learn's 8x8 handwritten digits: 1,797 real images shipped with scikit-learn (no download)."""
from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

from snnexp.data.static import StaticImageDataModule


class DigitsData(StaticImageDataModule):
    """The embedded default dataset: [1, 8, 8] images scaled to [0, 1], 10 classes.

    There is no official test split: `test_fraction` is held out, stratified by class.
    """

    in_shape = (1, 8, 8)
    num_classes = 10

    def load(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        bunch = load_digits()
        x = (bunch.images / 16.0).astype(np.float32)[:, None]  # [M, 8, 8] in 0..16 -> [M, 1, 8, 8] in [0, 1]
        return {"train": (x, bunch.target.astype(np.int64))}

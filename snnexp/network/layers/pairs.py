"""(h, w) pairs from an int, a tuple or a NIR array: the one helper every layer kind uses."""
from __future__ import annotations

import numpy as np


def pair(v) -> tuple[int, int]:
    a = np.asarray(v).ravel()
    return (int(a[0]), int(a[0])) if a.size == 1 else (int(a[0]), int(a[1]))

"""Train/val/test index splits, and how much of a pool a converted (cached) dataset needs.

Two ways to draw validation from a training pool, both from a seed and both empty at
val_fraction=0: per class (`stratified_splits`, still images) or a plain random subset
(`random_splits`, recorded events).

A dataset that is converted once (event emulation, framing) converts a *pool* (the official
train or test recordings, or all images when there is no official test set) independently of
the seed, and each seed's split then picks rows of the converted pool. With every limit of a
pool's splits set, only a prefix of the pool is converted: the smallest from which the limited
splits can be drawn (`stratified_prefix`, `random_prefix`), still the same for every seed.
"""
from __future__ import annotations

import math

import numpy as np
from sklearn.model_selection import train_test_split


def stratified_splits(labels: np.ndarray, val_fraction: float, test_fraction: float | None,
                      seed: int) -> dict[str, np.ndarray]:
    """Indices into labels: test (test_fraction held out, stratified; none when None), then val from the rest.

    The same partition as train_test_split on the arrays themselves (it depends only on the
    count, the labels and the seed).
    """
    index = np.arange(len(labels))
    out = {}
    if test_fraction is not None:
        index, out["test"] = train_test_split(index, test_size=test_fraction, stratify=labels, random_state=seed)
    if val_fraction > 0:
        out["train"], out["val"] = train_test_split(index, test_size=val_fraction, stratify=labels[index],
                                                    random_state=seed)
    else:  # every training sample trains (e.g. Diehl & Cook's 60,000); no validation split
        out["train"], out["val"] = index, index[:0]
    return out


def random_val_count(n: int, val_fraction: float) -> int:
    """How many of n recordings `random_splits` holds out: at least one when val_fraction > 0, none at 0."""
    return max(1, round(val_fraction * n)) if val_fraction > 0 else 0


def random_splits(n: int, val_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Indices 0..n-1: a random val_fraction of them (from seed) for "val", the rest for "train", each ascending."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = random_val_count(n, val_fraction)
    return {"train": np.sort(order[n_val:]), "val": np.sort(order[:n_val])}


def _stratifiable(n: int, held_out: int, classes: int) -> bool:
    return held_out >= classes and n - held_out >= classes


def stratified_prefix(labels: np.ndarray, limits: dict[str, int | None], val_fraction: float,
                      test_fraction: float | None) -> int:
    """The length of the smallest prefix of the pool whose stratified splits hold at least `limits`
    (train, val unless val_fraction=0, and test with test_fraction), with 10 of every class; the
    whole pool when a split drawn from it is unlimited."""
    validates = val_fraction > 0
    names = ["train"] + (["val"] if validates else []) + (["test"] if test_fraction is not None else [])
    if any(limits.get(name) is None for name in names):
        return len(labels)
    full = np.bincount(labels)
    present = full > 0
    classes = int(present.sum())
    n = max(sum(int(limits[name]) for name in names), 10 * classes)
    while n < len(labels):
        n_test = math.ceil(test_fraction * n) if test_fraction is not None else 0  # as train_test_split rounds
        n_val = math.ceil(val_fraction * (n - n_test))
        enough = (n - n_test - n_val >= limits["train"] and (not validates or n_val >= limits["val"])
                  and (test_fraction is None or n_test >= limits["test"]))
        feasible = (not validates or _stratifiable(n - n_test, n_val, classes)) and (
            test_fraction is None or _stratifiable(n, n_test, classes))
        counts = np.bincount(labels[:n], minlength=len(full))
        if enough and feasible and (counts[present] >= np.minimum(10, full[present])).all():
            return n
        n += max(1, n // 50)
    return len(labels)


def random_prefix(limit_train: int | None, limit_val: int | None, val_fraction: float) -> int | None:
    """The fewest recordings whose `random_splits` hold at least limit_train and (unless val_fraction=0)
    limit_val; None (all of them) when one of those is unlimited."""
    if val_fraction == 0:
        limit_val = 0  # no validation split to fill
    if limit_train is None or limit_val is None:
        return None
    n = int(limit_train) + int(limit_val)
    while random_val_count(n, val_fraction) < limit_val or n - random_val_count(n, val_fraction) < limit_train:
        n += 1
    return n

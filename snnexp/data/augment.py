"""Training-image augmentation on whole batches: a random crop after zero padding and a random
horizontal flip, the CIFAR recipe of the ResNet, TET, QCFS and Spikformer papers (torchvision's
RandomCrop(32, padding=4) + RandomHorizontalFlip, drawn per image).

It runs where the batch already is (CPU or GPU), after the loader, so it costs no per-image Python
and no worker processes: one padded copy and one gather per batch.
"""
from __future__ import annotations

import torch
from torch import Tensor


class CropFlip:
    """images [N, C, H, W] -> the same shape, each image shifted by up to `padding` pixels in each
    direction (the uncovered border zero, as a crop of the zero-padded image) and mirrored left-right
    with probability 1/2 when `flip`. Draws from its own generator, seeded once, so a run's
    augmentations depend on its seed only."""

    def __init__(self, padding: int, flip: bool, seed: int):
        self.padding, self.flip, self.seed = int(padding), bool(flip), int(seed)
        self.generator: torch.Generator | None = None

    def __bool__(self) -> bool:
        return self.padding > 0 or self.flip

    def __call__(self, images: Tensor) -> Tensor:
        if self.generator is None or self.generator.device != images.device:
            self.generator = torch.Generator(images.device).manual_seed(self.seed)
        n, _, h, w = images.shape
        p = self.padding
        rows = torch.arange(h, device=images.device).expand(n, h)
        cols = torch.arange(w, device=images.device).expand(n, w)
        if p > 0:
            shift = torch.randint(0, 2 * p + 1, (2, n, 1), device=images.device, generator=self.generator)
            rows, cols = rows + shift[0], cols + shift[1]
            images = torch.nn.functional.pad(images, (p, p, p, p))
        if self.flip:
            mirrored = torch.rand(n, 1, device=images.device, generator=self.generator) < 0.5
            cols = torch.where(mirrored, cols.flip(1), cols)
        batch = torch.arange(n, device=images.device)[:, None, None]
        # advanced indexing puts the indexed dims first: [N, H, W, C] -> [N, C, H, W]
        return images.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)

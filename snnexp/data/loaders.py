"""DataLoaders shaped for the device: pinned memory on CUDA, workers kept alive between epochs."""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from snnexp.errors import check


def pin(setting: bool | None) -> bool:
    """dataset.pin_memory: null = on when CUDA is available (page-locked batches copy to the GPU asynchronously)."""
    return torch.cuda.is_available() if setting is None else bool(setting)


def conversion_device(setting: str | None) -> torch.device:
    """dataset.convert_device: where a dataset-level conversion runs; null = cuda when available, else cpu."""
    if setting is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(setting)
    except RuntimeError:
        device = None
    check(device is not None and device.type in ("cpu", "cuda"), "dataset.convert_device", setting,
          "use null (cuda when available), cpu, cuda or cuda:<index>")
    check(device.type == "cpu" or torch.cuda.is_available(), "dataset.convert_device", setting,
          "CUDA is not available here: use null or cpu")
    return device


def loader(dataset: Dataset, batch_size: int, shuffle: bool, num_workers: int, pin_memory: bool) -> DataLoader:
    """persistent_workers when there are workers: no re-spawn (and re-import) at every epoch."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                      pin_memory=pin_memory, persistent_workers=num_workers > 0)

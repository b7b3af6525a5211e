from snnexp.data.datamodule import SplitDataModule
from snnexp.data.digits import DigitsData
from snnexp.data.static import StaticImageDataModule

__all__ = ["DigitsData", "SplitDataModule", "StaticImageDataModule"]

from snnexp.data.digits import Digits
from snnexp.data.static import StaticImageDataModule

__all__ = ["Digits", "StaticImageDataModule"]

from snnexp.encoding.direct import Direct, direct_encode
from snnexp.encoding.poisson import Poisson, poisson_encode

__all__ = ["Direct", "Poisson", "direct_encode", "poisson_encode"]

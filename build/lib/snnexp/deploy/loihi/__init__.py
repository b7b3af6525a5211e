from snnexp.deploy.loihi.target import LoihiTarget

__all__ = ["LoihiTarget"]

from snnexp.learners.bptt import BPTT

__all__ = ["BPTT"]

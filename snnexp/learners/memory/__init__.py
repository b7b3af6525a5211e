from snnexp.learners.memory.checkpoint import run_checkpointed
from snnexp.learners.memory.modes import MODES, WINDOWED, check_mode, check_model, segment_length
from snnexp.learners.memory.windows import train_windows

__all__ = ["MODES", "WINDOWED", "check_mode", "check_model", "run_checkpointed", "segment_length", "train_windows"]

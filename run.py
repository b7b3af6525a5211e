"""`python run.py [group=option ...] [key=value ...]` from a checkout: the same command as `snnexp` (snnexp/cli.py)."""
from snnexp.cli import entry

if __name__ == "__main__":
    entry()

"""The Hydra config groups (YAML), a package so `snnexp` finds them as pkg://snnexp.conf from any folder."""

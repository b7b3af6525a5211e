"""Compile leaky_fire.cpp, max_pool.cpp, inhibited_alif.cpp, pre_traces.cpp (and the shared pool_rows.h) with the machine's C++ compiler on first use, and cache the library.

No ninja and no pybind11: one g++ call against torch's headers, the result registered with
`torch.ops.load_library` as `torch.ops.snnexp_fused.*`. The cache key holds the source, the
flags, torch's and Python's versions and the CPU's instruction-set flags (the code is built
for this CPU with -march=native, and a home folder may be shared by different machines).
The cache lives in $SNNEXP_CACHE_DIR or ~/.cache/snnexp/kernels; concurrent first uses (sweep
workers) wait on a file lock and build once.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import torch

log = logging.getLogger(__name__)
SOURCES = [Path(__file__).with_name(name) for name in ("leaky_fire.cpp", "max_pool.cpp", "inhibited_alif.cpp", "pre_traces.cpp")]  # one library
HEADERS = [Path(__file__).with_name("pool_rows.h")]  # included by both: part of the cache key
# -fno-trapping-math: without it GCC keeps a branch for every `h >= th ? ... : ...` (a compare
# may raise a floating-point exception flag, so it is not if-converted): the soft-reset loops
# ran scalar, mispredicting at random spikes, 3x the vector time. Values do not change.
FLAGS = ["-O3", "-march=native", "-fopenmp", "-fno-trapping-math", "-std=c++17", "-shared", "-fPIC", "-w"]
# glibc's vector math (libmvec) for the sigmoid surrogate's exp; see leaky_fire.cpp
_X86_LINUX = sys.platform.startswith("linux") and platform.machine() == "x86_64"
LIBS = ["-lc10", "-ltorch_cpu"] + (["-lmvec"] if _X86_LINUX else [])


def cache_dir() -> Path:
    return Path(os.environ.get("SNNEXP_CACHE_DIR") or Path.home() / ".cache" / "snnexp" / "kernels")


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def _command(compiler: str, out: Path) -> list[str]:
    from torch.utils.cpp_extension import include_paths, library_paths

    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    includes = [f"-I{p}" for p in include_paths()] + [f"-I{sysconfig.get_paths()['include']}"]
    libs = [f"-L{p}" for p in library_paths()] + [f"-Wl,-rpath,{p}" for p in library_paths()]
    return [compiler, *map(str, SOURCES), "-o", str(out), *FLAGS, f"-D_GLIBCXX_USE_CXX11_ABI={abi}", *includes,
            *libs, *LIBS]


def build_and_load() -> None:
    """Build (or find in the cache) and load the kernels; raises OSError/RuntimeError on failure."""
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        raise RuntimeError("no C++ compiler found (g++ or c++ on PATH, or $CXX)")
    key = hashlib.sha256()
    for part in (*(src.read_bytes() for src in SOURCES + HEADERS), " ".join(FLAGS + LIBS).encode(), torch.__version__.encode(),
                 sys.version.encode(), _cpu_flags().encode(), compiler.encode()):
        key.update(part)
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    lib = folder / f"cpu_kernels_{key.hexdigest()[:16]}.so"
    if not lib.exists():
        with open(folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it right now
            if not lib.exists():
                log.info("snnexp: compiling the fused CPU kernels (once, ~1 min) into %s", lib)
                tmp = lib.with_suffix(f".{os.getpid()}.tmp")
                proc = subprocess.run(_command(compiler, tmp), capture_output=True, text=True)
                if proc.returncode != 0:
                    tmp.unlink(missing_ok=True)
                    raise RuntimeError(f"{compiler} failed: {proc.stderr.strip()[-1500:]}")
                os.replace(tmp, lib)
    torch.ops.load_library(str(lib))

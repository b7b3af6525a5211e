"""Where dataset files are looked for, and the one place that downloads (only when asked)."""
from __future__ import annotations

import os
import urllib.request
from pathlib import Path
from typing import Callable, Sequence

from snnexp.errors import ConfigError

SYSTEM_DIR = Path("/usr/share/datasets")  # Debian's dataset-* packages (dataset-fashion-mnist)


def candidates(name: str, root: str | None) -> list[Path]:
    """The folders searched, in order: dataset.root, $SNNEXP_DATA/<name>, /usr/share/datasets/<name>."""
    found = [Path(root).expanduser()] if root else []
    if os.environ.get("SNNEXP_DATA"):
        found.append(Path(os.environ["SNNEXP_DATA"]).expanduser() / name)
    found.append(SYSTEM_DIR / name)
    return found


def locate(name: str, root: str | None, has_files: Callable[[Path], bool], download: bool,
           fetch: Callable[[Path], None]) -> Path:
    """The first candidate folder for which `has_files(folder)` holds; else download (if asked) or explain.

    `fetch(folder)` downloads into dataset.root (or $SNNEXP_DATA/<name>, else ./data/<name>),
    only with dataset.download=true.
    """
    folders = candidates(name, root)
    for folder in folders:
        if has_files(folder):
            return folder
    if download:
        target = folders[0] if root or os.environ.get("SNNEXP_DATA") else Path("data") / name
        target.mkdir(parents=True, exist_ok=True)
        fetch(target)
        if has_files(target):
            return target
        raise ConfigError(f"dataset {name}: downloaded into {target}, but the expected files are still missing")
    looked = "\n  ".join(str(f) for f in folders)
    hint = " or `apt-get install dataset-fashion-mnist`," if name == "fashion-mnist" else ""
    raise ConfigError(
        f"dataset {name}: no data files found. Looked in:\n  {looked}\n"
        f"Put the files in a folder and set dataset.root=<folder>, or under $SNNEXP_DATA/{name} "
        f"(set SNNEXP_DATA),{hint} or let snnexp download them with dataset.download=true.")


def download_file(urls: Sequence[str], dest: Path) -> Path:
    """Fetch `dest` from the first URL that answers (mirrors in order), via a .part file; return dest."""
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    errors = []
    for url in urls:
        try:
            urllib.request.urlretrieve(url, tmp)  # noqa: S310 (the datasets' published URLs)
            tmp.replace(dest)
            return dest
        except OSError as e:  # URLError is an OSError
            errors.append(f"{url}: {e}")
            tmp.unlink(missing_ok=True)
    raise ConfigError(f"could not download {dest.name}:\n  " + "\n  ".join(errors))

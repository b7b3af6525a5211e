"""MkDocs hook: the reference pages, generated at build time, so they cannot drift from the code.

From snnexp/conf/: one page per config group (its subgroups as sections, e.g. neuron/surrogate on
the neuron page), each option's YAML as shipped (keys and their comments), and for every
`_target_` in it the constructor's signature and docstring. From the package: the Python API's
signatures and docstrings. Nothing generated is committed; a `_target_` that does not import fails
the build.
"""
from __future__ import annotations

import inspect
import sys
from pathlib import Path

import yaml
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "snnexp" / "conf"
API = ["compose", "build", "run", "load", "export", "Parts", "Loaded", "ConfigError"]


def on_files(files, config):
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # the checkout's snnexp, as the tests import it
    for path, text in pages().items():
        files.append(File.generated(config, path, content=text))
    return files


def pages() -> dict[str, str]:
    groups = sorted(p.name for p in CONF.iterdir() if p.is_dir() and not p.name.startswith("_"))
    out = {f"reference/config/{g}.md": group_page(g) for g in groups}
    out["reference/index.md"] = index_page(groups)
    out["reference/api.md"] = api_page()
    out["reference/config/top-level.md"] = "\n".join([
        "# Top-level keys", "", "`snnexp/conf/config.yaml`: the defaults list (one option per group) and the keys",
        "outside any group, set as `key=value` (`seed=1 T=16`).", "", "```yaml",
        (CONF / "config.yaml").read_text().rstrip(), "```", ""])
    return out


def index_page(groups: list[str]) -> str:
    lines = ["# Reference", "",
             "Generated when the site is built (docs/hooks/reference.py), from the config groups in",
             "`snnexp/conf/` and the classes their `_target_` keys name: what you read here is what a run",
             "composes. `python run.py --help` lists the same groups and options.", "",
             "- [Python API](api.md): `snnexp.compose`, `build`, `run`, `load`, `export`",
             "- [Top-level keys](config/top-level.md): `config.yaml` (seed, T, resume, energy, ...)", ""]
    defaults = default_choices()
    lines += ["| group | options (default first) |", "|---|---|"]
    for g in groups:
        for sub in [g, *subgroups(g)]:
            opts = options(sub, defaults.get(sub))
            if not opts:  # hydra/ holds only subgroups
                continue
            lines.append(f"| [{sub}](config/{g}.md#{anchor(sub)}) | {', '.join(f'`{o}`' for o in opts)} |")
    return "\n".join(lines) + "\n"


def default_choices() -> dict[str, str]:
    """The option each group defaults to, from config.yaml's defaults list."""
    chosen = {}
    for entry in yaml.safe_load((CONF / "config.yaml").read_text())["defaults"]:
        if isinstance(entry, dict):
            chosen.update({k: v for k, v in entry.items() if isinstance(v, str)})
    return chosen


def subgroups(group: str) -> list[str]:
    return sorted(str(p.relative_to(CONF)) for p in (CONF / group).rglob("*") if p.is_dir() and any(p.glob("*.yaml")))


def options(group: str, default: str | None = None) -> list[str]:
    names = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
    return sorted(names, key=lambda n: n != default)


def anchor(heading: str) -> str:
    """The id MkDocs gives a heading with this text (Python-Markdown's toc slugify)."""
    from markdown.extensions.toc import slugify

    return slugify(heading, "-")


def group_page(group: str) -> str:
    defaults = default_choices()
    lines = [f"# {group}", ""]
    if group == "hydra":
        lines += ["Hydra's own settings that snnexp ships: `hydra/launcher=<option>` picks how a sweep (`-m`) runs.", ""]
    for sub in ([group] if any((CONF / group).glob("*.yaml")) else []) + subgroups(group):
        opts = options(sub, defaults.get(sub))
        default = defaults.get(sub)
        lines += [f"## {sub}", "",
                  f"Choose with `{sub}=<option>`" + (f"; default `{default}`." if default else " (no default)."),
                  "Options: " + ", ".join(f"[`{o}`](#{anchor(f'{sub}={o}')})" for o in opts) + ".", ""]
        for opt in opts:
            lines += option_section(sub, opt)
    if group == "experiment":
        lines.insert(2, "Paper presets: each sets the paper's settings and reported number (`paper:`), and a "
                        "`reproduce:` block for `scripts/reproduce.py`. `_quick` variants are subsets for a 2-core CPU.\n")
    return "\n".join(lines) + "\n"


def option_section(group: str, option: str) -> list[str]:
    path = CONF / group / f"{option}.yaml"
    text = path.read_text()
    lines = [f"### {group}={option}", "",
             f"`snnexp/conf/{group}/{option}.yaml`", "", "```yaml", text.rstrip(), "```", ""]
    for target in targets(yaml.safe_load(text)):
        lines += target_section(target)
    return lines


def targets(node) -> list[str]:
    """Every `_target_` in a parsed YAML tree, in order, once each."""
    found: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("_target_"), str):
            found.append(node["_target_"])
        for value in node.values():
            found += [t for t in targets(value) if t not in found]
    elif isinstance(node, list):
        for value in node:
            found += [t for t in targets(value) if t not in found]
    return found


def target_section(target: str) -> list[str]:
    from hydra._internal.utils import _locate

    obj = _locate(target)  # raises: a _target_ that does not import fails the build
    lines = ["```python", f"{target}{signature(obj)}", "```", ""]
    if target.startswith("snnexp."):
        doc = inspect.getdoc(obj)
        if doc:
            lines += ["```text", doc, "```", ""]
    else:
        lines += [f"(from `{target.split('.')[0]}`: see its own documentation)", ""]
    return lines


def signature(obj) -> str:
    """obj's signature; for a class whose __init__ passes **kwargs on to its base class, with the
    base's keywords in their place (the keys a YAML may set, as snnexp.typecheck reads them)."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return ""
    if not inspect.isclass(obj):
        return str(sig)
    params: list[inspect.Parameter] = []
    for cls in obj.__mro__:
        init = cls.__dict__.get("__init__")
        if init is None or cls is object:
            continue
        own = list(inspect.signature(init).parameters.values())[1:]  # without self
        names = {p.name for p in params}
        params += [p for p in own if p.kind is not p.VAR_KEYWORD and p.name not in names]
        if not any(p.kind is p.VAR_KEYWORD for p in own):
            return "(" + ", ".join(str(p) for p in params) + ")"
    return str(sig)  # the chain ends open (a **kwargs nobody names): as Python reports it


def api_page() -> str:
    import snnexp

    lines = ["# Python API", "",
             "`import snnexp` re-exports these from `snnexp.api`, `snnexp.experiment` and `snnexp.errors`",
             "(generated from their signatures and docstrings). A worked example: [the API how-to](../howto/api.md).", ""]
    for name in API:
        obj = getattr(snnexp, name)
        lines += [f"## snnexp.{name}", "", "```python", f"{name}{signature(obj)}", "```", ""]
        doc = inspect.getdoc(obj)
        if doc:
            lines += ["```text", doc, "```", ""]
    return "\n".join(lines) + "\n"

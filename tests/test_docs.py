"""The docs cannot drift: the README's `make run` block is what docs/make_run.json renders, and the
generated reference covers every option of every config group. (`make docs`, run by .ci/run, builds
the whole site with `mkdocs build --strict`.)"""
from __future__ import annotations

import importlib.util
import json
import re

import yaml

from tests.conftest import ROOT
from tests.helpers import CONF


def load_module(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_make_run_block_is_what_the_measured_json_renders():
    figures_script = load_module(ROOT / "scripts" / "readme_figures.py")
    figures = json.loads((ROOT / "docs" / "make_run.json").read_text())
    readme = (ROOT / "README.md").read_text()
    begin, end = readme.find(figures_script.BEGIN), readme.find(figures_script.END)
    assert 0 <= begin < end, "README.md lost its make-run-figures markers"
    block = readme[begin:end + len(figures_script.END)]
    assert block == figures_script.render(figures), "README's make run figures were edited by hand: " \
                                                   "run scripts/readme_figures.py"
    assert f"**test accuracy {figures['test_acc']:.4f}**" in block and f"**{figures['command_s']} s**" in block


def test_readme_fits_and_links_only_to_files_that_exist():
    readme = (ROOT / "README.md").read_text()
    assert len(readme) <= 12_000
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        if not target.startswith(("http://", "https://")):
            assert (ROOT / target).exists(), f"README links to a missing {target}"


def test_reference_has_every_option_its_yaml_and_its_targets_signature():
    reference = load_module(ROOT / "docs" / "hooks" / "reference.py")
    pages = reference.pages()
    for path in sorted(CONF.rglob("*.yaml")):
        rel = path.relative_to(CONF)
        if len(rel.parts) == 1:  # config.yaml: the top-level keys page
            assert path.read_text().rstrip() in pages["reference/config/top-level.md"]
            continue
        group, option = str(rel.parent), path.stem
        page = pages[f"reference/config/{rel.parts[0]}.md"]
        section = page.split(f"### {group}={option}\n", 1)
        assert len(section) == 2, f"no section for {group}={option}"
        body = section[1].split("\n### ", 1)[0]
        assert path.read_text().rstrip() in body  # the YAML as shipped, comments included
        for target in reference.targets(yaml.safe_load(path.read_text())):
            assert f"\n{target}(" in body or f"\n{target}\n" in body, f"{group}={option}: {target} not documented"
    for name in ["compose", "build", "run", "load", "export"]:
        assert f"## snnexp.{name}\n" in pages["reference/api.md"]

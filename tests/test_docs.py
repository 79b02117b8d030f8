"""The documentation site's sources: every page is in the navigation, the API reference covers the
package, and the Python in the pages imports what exists. (CI also runs `mkdocs build --strict`,
which checks every link and anchor.)"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _nav_pages(nav) -> list[str]:
    pages = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages.extend(_nav_pages(value) if isinstance(value, list) else [value])
    return pages


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    return hooks


def test_every_page_is_in_the_navigation():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = _nav_pages(config["nav"])
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert [p for p in pages if p not in nav] == []
    generated = {"index.md", "changelog.md"}  # written by docs/hooks.py from README.md and CHANGELOG.md
    assert [p for p in nav if p not in pages and p not in generated] == []
    assert nav[0] == "index.md" and "tutorial.md" in nav


def test_api_reference_has_a_page_per_public_module():
    pytest.importorskip("mkdocs")
    modules = _hooks().public_modules()
    on_disk = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / "platform_sim").rglob("*.py")
    }
    public = {m for m in on_disk if not any(part.startswith("_") for part in m.split("."))}
    assert set(modules) == public and len(modules) == len(set(modules))
    for m in ("platform_sim", "platform_sim.config", "platform_sim.runner", "platform_sim.schemas"):
        assert m in modules


def _python_blocks():
    for page in sorted(DOCS.rglob("*.md")):
        for i, block in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)):
            yield pytest.param(block, id=f"{page.relative_to(DOCS)}-{i}")


@pytest.mark.parametrize("code", list(_python_blocks()))
def test_python_in_the_docs_imports_what_exists(code):
    """Every block is valid Python, and every platform_sim name it imports exists (a module moved or a
    function renamed breaks the pages without this)."""
    compile(code, "<docs>", "exec")
    for module, names in re.findall(r"^from (platform_sim[\w.]*) import ([^\n(]+)", code, re.M):
        imported = importlib.import_module(module)
        for name in (n.strip() for n in names.split("#")[0].split(",")):
            assert hasattr(imported, name) or importlib.util.find_spec(f"{module}.{name}"), f"{module}.{name}"

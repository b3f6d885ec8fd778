"""The README stays a five-minute read and points only at pages that exist; every page is in the site."""

from __future__ import annotations

import re

import pytest
import yaml

from workbench.config import REPO_ROOT

pytestmark = pytest.mark.unit

README = REPO_ROOT / "README.md"
DOCS = REPO_ROOT / "docs"


def _nav_pages(nav: list[object]) -> set[str]:
    pages: set[str] = set()
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            pages |= _nav_pages(value)
        else:
            pages.add(str(value))
    return pages


def test_the_readme_is_under_150_lines() -> None:
    assert len(README.read_text().splitlines()) < 150


def test_every_link_of_the_readme_reaches_a_file() -> None:
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text())
    assert targets, "the README links into the docs"
    missing = [t for t in targets if "://" not in t and not (REPO_ROOT / t).exists()]
    assert not missing


def test_every_docs_page_is_in_the_site_navigation() -> None:
    config = yaml.safe_load((REPO_ROOT / "mkdocs.yml").read_text())
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert _nav_pages(config["nav"]) == pages

"""Packaging stays in step: environment.yml mirrors pyproject.toml; forbidden packages stay out."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from workbench.config import REPO_ROOT

pytestmark = pytest.mark.unit


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower()


def test_environment_yml_lists_what_pyproject_installs() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    # The extras `./dev` builds the venv with, as its EXTRAS line names them.
    found = re.search(r'^EXTRAS="([^"]+)"', (REPO_ROOT / "dev").read_text(), re.MULTILINE)
    assert found is not None
    installed = [r for extra in found.group(1).split(",") for r in extras[extra]]
    wanted = {_name(r) for r in [*project["dependencies"], *installed]}
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip_section = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    assert {_name(r) for r in pip_section} == wanted


def test_pins_that_must_hold() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    every = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        every += extra
    assert "livekit-agents==1.8.9" in every
    assert "livekit==1.1.21" in every  # the realtime SDK livekit-agents 1.8.9 pins
    assert all(r == "torch==2.13.0" for r in every if _name(r) == "torch")
    assert not [r for r in every if _name(r) == "torchaudio"]  # would force a second multi-GB torch


def test_import_datasets_means_hugging_faces_package_not_ours(tmp_path: Path) -> None:
    """With the checkout first on the path (as `./dev` runs everything), `import datasets`
    must still find an installed `datasets` package (Hugging Face's; transformers and
    evaluate import it when present): the project's builders are `workbench_datasets`."""
    site = tmp_path / "site-packages"
    (site / "datasets").mkdir(parents=True)
    (site / "datasets" / "__init__.py").write_text("WHO = 'hugging face'\n")
    found = subprocess.run(
        [sys.executable, "-c", "import datasets, workbench_datasets; print(datasets.WHO)"],
        env={**os.environ, "PYTHONPATH": f"{REPO_ROOT}:{site}"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "hugging face"

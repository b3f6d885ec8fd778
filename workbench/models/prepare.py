"""Convert a stack's packaged checkpoints once, before a worker needs them.

    python -m workbench.models.prepare configs/stacks/cpu-small.yaml

Only conversions run here (cached; instant when done); loading stays in the
worker's prewarm.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from workbench.models.convert import gguf_to_safetensors, whisper_ct2_to_transformers
from workbench.models.sources import resolve_source
from workbench.models.spec import ModelSpec
from workbench.models.stack import load_stack


def prepare_spec(spec: ModelSpec) -> str | None:
    """Run the conversion a spec needs, if any; the converted folder."""
    if spec.backend != "transformers":
        return None
    source = Path(resolve_source(spec.model))
    if spec.kind == "llm" and spec.params.get("gguf_file"):
        return str(gguf_to_safetensors(source / str(spec.params["gguf_file"])))
    if (
        spec.kind == "stt"
        and (source / "model.bin").exists()
        and not any(source.glob("*.safetensors"))
    ):
        return str(whisper_ct2_to_transformers(source))
    return None


def main(argv: list[str] | None = None) -> int:
    """Prepare every spec of the given stack files."""
    for path in argv if argv is not None else sys.argv[1:]:
        stack = load_stack(path)
        for spec in (stack.stt, stack.llm, stack.tts):
            t0 = time.perf_counter()
            converted = prepare_spec(spec)
            if converted:
                print(
                    f"{spec.name}: ready in {time.perf_counter() - t0:.1f} s ({converted})",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

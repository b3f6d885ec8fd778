"""The eval runner on real models: a WER bound for Whisper tiny.en, kill-and-resume, per-row errors."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from agent.text_chunks import FirstClauseTokenizer
from evals.__main__ import main as evals_cli
from evals.compare import compare_runs, format_comparison
from evals.run_folder import RunFolder, RunMismatch
from evals.runner import run_task
from evals.tasks.asr import AsrTask
from evals.tasks.latency import LatencyTask
from evals.tasks.prompt_quality import PromptQualityTask, PromptVariant
from workbench.config import REPO_ROOT
from workbench.models import ModelSpec, load_spec
from workbench.models.stack import load_stack
from workbench.speech_text import take_chunks
from workbench_datasets import pocketsphinx
from workbench_datasets.dialogues import Dialogue, DialogueMessage
from workbench_datasets.manifest import ManifestRow, read_manifest, write_manifest

pytestmark = pytest.mark.unit

CONFIGS = REPO_ROOT / "configs"
CT2 = CONFIGS / "models" / "whisper-tiny-en-ct2.yaml"


@pytest.fixture(scope="module")
def speech_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not pocketsphinx.available():
        pytest.skip(pocketsphinx.INSTALL_HINT)
    folder = tmp_path_factory.mktemp("pocketsphinx")
    return write_manifest(folder / "manifest.jsonl", pocketsphinx.pocketsphinx_rows())


async def test_asr_run_on_real_recordings(speech_manifest: Path, tmp_path: Path) -> None:
    task = AsrTask(spec=load_spec(CT2), manifest=read_manifest(speech_manifest))
    result = await run_task(task, folder=RunFolder(tmp_path / "run"), batch_size=4, progress=False)
    metrics = result.metrics
    assert metrics["samples"] == 10
    assert metrics["errors"] == 0
    assert metrics["wer"] < 0.2  # measured 0.11 for tiny.en (faster-whisper int8)
    assert metrics["wer_ci95"][0] <= metrics["wer"] <= metrics["wer_ci95"][1]
    assert metrics["rtfx"] > 1
    assert metrics["reference_words"] == 91
    info = RunFolder(tmp_path / "run").read_info()
    assert info.task == "asr"
    assert info.dataset_id == read_manifest(speech_manifest).dataset_id
    assert info.spec["stt"]["name"] == "whisper-tiny-en-ct2"
    assert info.git_sha is None or len(info.git_sha) == 40


def _cli_run(manifest: Path, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "evals",
            "run",
            "--task",
            "asr",
            "--spec",
            str(CT2),
            "--dataset",
            str(manifest),
            "--out",
            str(out),
            "--batch-size",
            "1",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_a_killed_run_resumes_to_the_same_result(speech_manifest: Path, tmp_path: Path) -> None:
    killed = _cli_run(speech_manifest, tmp_path / "killed")
    samples = tmp_path / "killed" / "samples.jsonl"
    deadline = time.monotonic() + 120
    while not (samples.exists() and samples.read_text().count("\n") >= 2):
        assert killed.poll() is None, killed.communicate()
        assert time.monotonic() < deadline, "the run wrote no samples"
        time.sleep(0.02)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    with samples.open("a") as out:
        out.write('{"sample_id": "cut-off-mid-li')  # as if killed inside a write
    done_before = len(RunFolder(tmp_path / "killed").samples())
    assert 2 <= done_before < 10

    resumed = _cli_run(speech_manifest, tmp_path / "killed")
    assert resumed.wait(timeout=300) == 0, resumed.communicate()
    straight = _cli_run(speech_manifest, tmp_path / "straight")
    assert straight.wait(timeout=300) == 0, straight.communicate()

    a, b = RunFolder(tmp_path / "killed"), RunFolder(tmp_path / "straight")
    by_id = {s.sample_id: s for s in a.samples()}
    assert len(by_id) == 10
    for sample in b.samples():
        assert by_id[sample.sample_id].hypothesis == sample.hypothesis
        assert by_id[sample.sample_id].metrics["wer"] == sample.metrics["wer"]
    metrics_a, metrics_b = a.read_metrics(), b.read_metrics()
    assert metrics_a is not None
    assert metrics_b is not None
    for key in ("wer", "cer", "substitutions", "deletions", "insertions", "samples"):
        assert metrics_a[key] == metrics_b[key]
    assert a.read_info().run_id != b.read_info().run_id
    table = format_comparison(compare_runs(b, a))
    assert "WER" in table
    assert "no significant difference" in table.splitlines()[2]


async def test_bad_rows_and_unreadable_audio_do_not_stop_a_run(tmp_path: Path) -> None:
    sf.write(str(tmp_path / "ok.wav"), np.zeros(8000, dtype=np.float32), 16_000)
    sf.write(str(tmp_path / "broken.wav"), np.zeros(8000, dtype=np.float32), 16_000)
    rows = [
        ManifestRow(
            id=name,
            audio=f"{name}.wav",
            reference="",
            duration_s=0.5,
            source="t",
            licence="x",
            speech=False,
        )
        for name in ("ok", "broken")
    ]
    manifest = read_manifest(write_manifest(tmp_path / "manifest.jsonl", rows))
    (tmp_path / "broken.wav").write_bytes(b"RIFF....garbage")  # breaks after the check
    fake = ModelSpec(
        name="fake-stt",
        kind="stt",
        backend="fake",
        model="fake",
        params={"transcript": "thanks for watching"},
    )
    result = await run_task(
        AsrTask(spec=fake, manifest=manifest), folder=RunFolder(tmp_path / "r"), progress=False
    )
    errors = {s.sample_id: s.error for s in result.samples}
    assert errors["ok"] is None
    assert "not readable audio" in (errors["broken"] or "")
    # Whisper-style hallucination on a no-speech clip is counted, not scored as WER.
    assert result.metrics["hallucination_rate"] == 1.0
    assert result.metrics["hallucinated_words"] == 3
    assert "wer" not in result.metrics


class _RecordingSink:
    """A sink that keeps what the runner tells it (the database sink's calls, without one)."""

    def __init__(self) -> None:
        self.status: str | None = None

    async def open(self, info: Any) -> None:
        pass

    async def add(self, samples: Any) -> None:
        pass

    async def close(self, *, status: str, metrics: dict[str, Any]) -> None:
        self.status = status


class _StallAfterFirstBatch:
    """Scores one batch, then hangs: a long run caught mid-way."""

    def __init__(self) -> None:
        self.first_batch_done = asyncio.Event()

    async def scored(self, task: Any, batches: Any) -> AsyncIterator[tuple[Any, Any]]:
        task.load()
        yield batches[0], await task.score(batches[0])
        self.first_batch_done.set()
        await asyncio.Event().wait()


async def test_ctrl_c_stores_the_run_as_interrupted(speech_manifest: Path, tmp_path: Path) -> None:
    """asyncio.run turns Ctrl-C into the main task's cancellation: the run is `interrupted`."""
    fake = ModelSpec(name="fake-stt", kind="stt", backend="fake", model="fake")
    sink, engine = _RecordingSink(), _StallAfterFirstBatch()
    run = asyncio.create_task(
        run_task(
            AsrTask(spec=fake, manifest=read_manifest(speech_manifest)),
            folder=RunFolder(tmp_path / "run"),
            sink=sink,
            batch_size=2,
            progress=False,
            engine=engine,
        )
    )
    await asyncio.wait_for(engine.first_batch_done.wait(), timeout=60)
    run.cancel()  # what asyncio.run's SIGINT handler does
    with pytest.raises(asyncio.CancelledError):
        await run
    assert sink.status == "interrupted"
    assert len(RunFolder(tmp_path / "run").samples()) == 2  # kept for the resume


async def test_a_folder_refuses_a_different_run(speech_manifest: Path, tmp_path: Path) -> None:
    manifest = read_manifest(speech_manifest)
    fake = ModelSpec(name="fake-stt", kind="stt", backend="fake", model="fake")
    await run_task(
        AsrTask(spec=fake, manifest=manifest), folder=RunFolder(tmp_path), progress=False
    )
    other = fake.model_copy(update={"params": {"transcript": "x"}})
    with pytest.raises(RunMismatch, match="use another --out folder"):
        await run_task(
            AsrTask(spec=other, manifest=manifest), folder=RunFolder(tmp_path), progress=False
        )


@pytest.mark.parametrize(
    "reply",
    [
        "Sure, I can help with that. What time works for you?",
        "Tomorrow at nine works well for the dentist, and I will remind you.",
        "Dr. Smith is in at 3.5 hours. Shall I book it?",
    ],
)
async def test_the_latency_eval_cuts_a_streamed_reply_as_the_live_agent_does(reply: str) -> None:
    """The first chunk (what voice to voice waits for) is the live agent's first chunk."""
    tokens = [word + " " for word in reply.split(" ")]  # as an LLM streams it, word by word
    chunks, pending, spoken = [], "", False
    for token in tokens:
        pending += token
        complete, pending = take_chunks(pending, first=not spoken)
        spoken = spoken or bool(complete)
        chunks += complete
    if pending.strip():
        chunks.append(pending.strip())
    stream = FirstClauseTokenizer().stream()  # the live agent's cut, fed the same tokens
    for token in tokens:
        stream.push_text(token)
    stream.end_input()
    live = [event.token.strip() async for event in stream]
    assert chunks[0] == live[0]
    assert " ".join(chunks) == reply.strip()  # nothing lost or repeated


async def test_latency_task_on_the_small_stack(speech_manifest: Path, tmp_path: Path) -> None:
    manifest = read_manifest(speech_manifest)
    task = LatencyTask(stack=load_stack(CONFIGS / "stacks" / "cpu-small.yaml"), manifest=manifest)
    task.items = task.items[:2]
    result = await run_task(task, folder=RunFolder(tmp_path), progress=False)
    assert result.metrics["errors"] == 0
    for sample in result.samples:
        m = sample.metrics
        assert 0 < m["stt_s"] < m["v2v_s"]
        assert m["llm_ttft_s"] <= m["llm_first_sentence_s"]
        assert m["v2v_s"] == pytest.approx(
            m["stt_s"] + m["llm_first_sentence_s"] + m["tts_ttfb_s"], abs=1e-6
        )
        assert sample.hypothesis
    assert result.metrics["v2v_s"]["n"] == 2


async def test_prompt_quality_with_a_real_judge(tmp_path: Path) -> None:
    smol = load_spec(CONFIGS / "models" / "smollm2-135m-instruct.yaml")
    dialogues = [
        Dialogue(
            id="capital",
            source="t",
            reference_reply="Paris is the capital of France.",
            messages=(DialogueMessage(role="user", content="What is the capital of France?"),),
        ),
        Dialogue(
            id="hello",
            source="t",
            reference_reply=None,
            messages=(DialogueMessage(role="user", content="Hello!"),),
        ),
    ]
    task = PromptQualityTask(
        llm=smol,
        judge=smol,
        embedder=load_spec(CONFIGS / "models" / "minilm-l6-v2.yaml"),
        variants=[
            PromptVariant("short", "Answer in one short sentence."),
            PromptVariant("pirate", "You are a pirate. Always talk like a pirate."),
        ],
        dialogues=dialogues,
        dataset_id="test@1",
        max_new_tokens=24,
    )
    assert task.judge is task.llm  # one loaded copy serves both roles
    result = await run_task(task, folder=RunFolder(tmp_path), progress=False)
    rows = {s.sample_id: s for s in result.samples}
    assert set(rows) == {"capital::short", "capital::pirate", "hello::short", "hello::pirate"}
    for row in rows.values():
        assert row.hypothesis
        assert 1.0 <= row.metrics["judge_score"] <= 5.0
        assert sum(row.metrics["judge_probabilities"]) == pytest.approx(1.0, abs=1e-3)
    assert rows["hello::short"].metrics["similarity"] is None
    assert -1.0 <= rows["capital::short"].metrics["similarity"] <= 1.0
    summary = result.metrics
    assert summary["dialogues"] == 2
    assert summary["win_rate_vs_short"]["pirate"]["pairs"] == 2
    json.dumps(summary)  # stored as JSON in eval_runs.metrics


def test_prompt_variants_are_checked() -> None:
    with pytest.raises(ValueError, match="label"):
        PromptVariant("has space", "x")
    with pytest.raises(ValueError, match="empty system prompt"):
        PromptVariant("a", "  ")


def test_the_cli_runs_a_task_from_the_registry_resumes_and_shows_it(
    speech_manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m evals run` builds the task by name, limits the dataset to its own id, resumes."""
    spec = tmp_path / "fake-stt.yaml"
    spec.write_text("name: fake-stt\nkind: stt\nbackend: fake\nmodel: fake\n")
    argv = ["run", "--task", "asr", "--spec", str(spec), "--dataset", str(speech_manifest)]
    out = tmp_path / "run"
    assert evals_cli([*argv, "--limit", "3", "--out", str(out)]) == 0
    first = capsys.readouterr().out
    limited = RunFolder(out).read_info().dataset_id
    assert limited != read_manifest(speech_manifest).dataset_id  # three rows are another dataset
    assert limited == read_manifest(speech_manifest).first(3).dataset_id
    assert evals_cli([*argv, "--limit", "3", "--out", str(out)]) == 0  # resumes: nothing to do
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["samples"] == 3
    assert "samples" in first
    assert evals_cli(["run", "--task", "asr", "--dataset", str(speech_manifest)]) == 2
    assert "--task asr needs --spec" in capsys.readouterr().err

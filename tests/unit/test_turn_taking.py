"""The turn-taking lab: the live endpointing rules replayed on real VAD and turn-model output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evals.endpointing import EarlyTranscript, TurnTakingReplay
from evals.plots import turn_taking_curve, turn_taking_frame
from evals.run_folder import RunFolder
from evals.runner import run_task
from evals.tasks.turn_taking import TurnTakingTask
from workbench.audio import read_audio
from workbench.config import REPO_ROOT
from workbench.models import TextToSpeech, load_model, load_spec
from workbench.turn_taking import DEFAULT_SETTING, EndpointSetting, reads_finished, setting_grid
from workbench_datasets.manifest import read_manifest, write_manifest
from workbench_datasets.paused import paused_rows

pytestmark = pytest.mark.unit

LINES = ["I need eggs, | milk | and some bread.", "Turn off the kitchen lights please."]
# Thresholds that take the turn model's judgement out: every turn "unlikely" / "likely" over.
ALWAYS_WAIT, NEVER_WAIT = 1.01, 0.0


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    # flite: deterministic (piper samples its prosody, so its pauses vary run to run)
    voice = load_model(load_spec(REPO_ROOT / "configs" / "models" / "flite-slt.yaml"))
    assert isinstance(voice, TextToSpeech)
    folder = tmp_path_factory.mktemp("paused")

    async def build() -> list[np.ndarray]:
        rows = await paused_rows(LINES, [voice], folder, pauses_s=(1.0,))
        write_manifest(folder / "manifest.jsonl", rows)
        return [read_audio(folder / row.audio) for row in rows]

    import asyncio

    return folder, asyncio.run(build())


async def test_a_pause_longer_than_the_wait_cuts_the_user_off(
    clips: tuple[Path, list[np.ndarray]],
) -> None:
    paused, whole = clips[1]
    replay = TurnTakingReplay()
    short_wait = await replay.replay(0, paused, EndpointSetting(unlikely_threshold=NEVER_WAIT))
    assert short_wait.cut_off  # 0.3 s of silence inside a 1 s pause ends the turn
    assert short_wait.delay_s < -1.0
    long_wait = EndpointSetting(max_delay_s=1.5, unlikely_threshold=ALWAYS_WAIT)
    waited = await replay.replay(0, paused, long_wait)
    assert not waited.cut_off
    assert 1.4 <= waited.delay_s <= 1.8  # max_delay from the end of speech, plus VAD framing
    # A sentence said in one go ends once the VAD's silence and the least wait have passed.
    done = await replay.replay(1, whole, DEFAULT_SETTING)
    assert not done.cut_off
    assert 0.25 <= done.delay_s <= 3.2
    quick = await replay.replay(1, whole, EndpointSetting(unlikely_threshold=NEVER_WAIT))
    assert 0.25 <= quick.delay_s <= 0.6
    assert quick.eot_probability is not None  # the model was asked, 0.2 s into the pause


async def test_a_vad_silence_under_the_models_question_time_leaves_the_model_out(
    clips: tuple[Path, list[np.ndarray]],
) -> None:
    # As live: the turn model is asked 0.2 s into a pause; a VAD that ends speech at
    # 0.15 s commits before that, so the model never has a say.
    end = await TurnTakingReplay().replay(
        1, clips[1][1], EndpointSetting(vad_silence_s=0.15, unlikely_threshold=ALWAYS_WAIT)
    )
    assert end.eot_probability is None
    assert end.delay_s < 0.6


async def test_the_transcript_bounds_the_commit_when_the_stt_is_slow(
    clips: tuple[Path, list[np.ndarray]],
) -> None:
    async def slow_stt(_samples: np.ndarray) -> EarlyTranscript:
        return EarlyTranscript(seconds=0.8, text="Turn off the kitchen lights please.")

    end = await TurnTakingReplay(transcribe=slow_stt).replay(
        1, clips[1][1], EndpointSetting(unlikely_threshold=NEVER_WAIT)
    )
    assert end.delay_s >= 0.15 + 0.8 - 0.06  # early-STT pause + transcription


async def test_the_task_scores_every_setting_and_summarises_the_trade(
    clips: tuple[Path, list[np.ndarray]], tmp_path: Path
) -> None:
    folder, _ = clips
    settings = [
        DEFAULT_SETTING,
        EndpointSetting(unlikely_threshold=NEVER_WAIT),
        EndpointSetting(max_delay_s=1.5, unlikely_threshold=ALWAYS_WAIT),
    ]
    task = TurnTakingTask(manifest=read_manifest(folder / "manifest.jsonl"), settings=settings)
    result = await run_task(task, folder=RunFolder(tmp_path / "run"), progress=False)
    assert len(result.samples) == 2 * len(settings)
    assert {task.item_of(s.sample_id) for s in result.samples} == {r.id for r in task.items}
    summary = result.metrics
    assert summary["default"] == DEFAULT_SETTING.label
    never, always = (summary["settings"][s.label] for s in settings[1:])
    assert never["cut_off_rate"]["value"] == 0.5  # the paused utterance, not the whole one
    assert always["cut_off_rate"]["value"] == 0.0
    assert always["delay_p95_s"]["value"] > never["delay_p95_s"]["value"]

    frame = turn_taking_frame(summary)
    assert frame["default"].sum() == 1
    # The front: the least cut-off at its least wait is on it; nothing on it is beaten
    # on both axes by another setting.
    least_cut = frame[frame["cut_off"] == frame["cut_off"].min()]
    assert frame.loc[least_cut["p95"].idxmin(), "front"]
    for row in frame[frame["front"]].itertuples():
        beaten = (frame["cut_off"] < row.cut_off) & (frame["p95"] < row.p95)
        assert not beaten.any(), frame
    assert turn_taking_curve(summary).renderers


async def test_a_finished_transcript_shortens_the_models_long_wait_and_an_unfinished_one_does_not(
    clips: tuple[Path, list[np.ndarray]],
) -> None:
    # The STT's text is given here (the rule reads text; the VAD and the turn model are real).
    def stt(text: str) -> Any:
        async def transcribe(_samples: np.ndarray) -> EarlyTranscript:
            return EarlyTranscript(seconds=0.1, text=text)

        return transcribe

    whole = clips[1][1]
    waits = EndpointSetting(max_delay_s=2.0, unlikely_threshold=ALWAYS_WAIT)
    reads = EndpointSetting(max_delay_s=2.0, unlikely_threshold=ALWAYS_WAIT, text_done_delay_s=0.6)
    finished = TurnTakingReplay(transcribe=stt("Turn off the kitchen lights please."))
    assert (await finished.replay(1, whole, waits)).delay_s >= 1.9
    assert 0.55 <= (await finished.replay(1, whole, reads)).delay_s <= 0.9
    going_on = TurnTakingReplay(transcribe=stt("Turn off the kitchen lights and"))
    assert (await going_on.replay(1, whole, reads)).delay_s >= 1.9
    with pytest.raises(ValueError, match="give the replay an STT"):
        await TurnTakingReplay().replay(1, whole, reads)


@pytest.mark.parametrize(
    ("transcript", "finished"),
    [
        ("Turn off the kitchen lights please.", True),
        ("What time is it in Tokyo?", True),
        ("Stop!", True),
        ("I need eggs,", False),
        ("I would like to book a table for.", False),  # Whisper's period after a hesitation
        ("Set an alarm for", False),
        ("Tell me about the...", False),
        ("Wake me up at half past six on weekdays", False),  # no full stop: not read as done
        ("", False),
    ],
)
def test_a_transcript_reads_finished_only_as_a_whole_sentence(
    transcript: str, finished: bool
) -> None:
    assert reads_finished(transcript) is finished


def test_the_grid_holds_the_live_default_and_no_setting_twice() -> None:
    grid = setting_grid(text_done_delay_s=(None, 0.3, 0.6, 1.0))
    assert DEFAULT_SETTING in grid
    assert len({s.label for s in grid}) == len(grid)
    assert all(s.max_delay_s >= s.min_delay_s for s in grid)
    # The transcript rule only where the turn model can ask for the long wait, and shorter.
    texts = [s for s in grid if s.text_done_delay_s is not None]
    assert texts
    assert all(s.unlikely_threshold is not None for s in texts)
    assert all(s.min_delay_s <= s.text_done_delay_s < s.max_delay_s for s in texts)  # type: ignore[operator]


def test_the_default_threshold_is_livekits_calibrated_one() -> None:
    # The agent runs LiveKit's English threshold unless told otherwise; the lab replays it.
    from livekit.agents.inference.eot.languages import LOCAL_LANGUAGES

    assert DEFAULT_SETTING.unlikely_threshold == LOCAL_LANGUAGES["en"]

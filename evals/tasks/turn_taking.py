"""`turn_taking`: endpoint delay against premature cut-offs, for a grid of endpointing settings.

Each clip is replayed through the live agent's VAD and end-of-turn model
(`evals.endpointing`) under every setting of the grid. A row per clip and
setting records where the agent would have taken its turn: the delay from the
user's last audible sample, or a cut-off when that was before the user
finished. The summary gives, per setting, the cut-off rate and the delay's p50
and p95 over the clips not cut off, each with a 95% bootstrap interval, and
marks the live defaults: the points of the delay-vs-cut-off curve.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from evals.endpointing import EarlyTranscript, TurnTakingReplay
from evals.stats import bootstrap_ci, mean
from evals.tasks.base import Task
from workbench.audio import AudioDecodeError
from workbench.db.models import EvalSample
from workbench.models import ModelSpec, SpeechToText, create
from workbench.turn_taking import DEFAULT_SETTING, EndpointSetting, setting_grid
from workbench_datasets.manifest import Manifest, ManifestRow

SETTING_SEPARATOR = "@"  # a row is `<clip>@<setting>`


class TurnTakingTask(Task[ManifestRow]):
    """Replay speech clips under each endpointing setting; `stt` adds the early transcript's wait."""

    name = "turn_taking"
    version = "1"

    def __init__(
        self,
        *,
        manifest: Manifest,
        settings: Sequence[EndpointSetting] | None = None,
        stt: ModelSpec | None = None,
    ) -> None:
        super().__init__(
            dataset_id=manifest.dataset_id, items=[r for r in manifest.rows if r.speech]
        )
        self.manifest = manifest
        # The transcript rule reads the STT's text: the grid tries it only with an STT.
        self.settings = (
            list(settings)
            if settings is not None
            else setting_grid(text_done_delay_s=(None, 0.3, 0.6, 1.0) if stt else (None,))
        )
        self.stt_spec = stt
        self._stt: SpeechToText | None = None
        if stt is not None:
            model = create(stt)
            if not isinstance(model, SpeechToText):
                raise TypeError(
                    f"turn_taking needs a speech-to-text spec, {stt.name} is {stt.kind}"
                )
            self._stt = model
        self._replay: TurnTakingReplay | None = None
        self._clip_ids: dict[str, int] = {}

    def item_id(self, item: ManifestRow) -> str:
        return item.id

    def item_of(self, sample_id: str) -> str:
        return sample_id.rpartition("@")[0]

    def spec_snapshot(self) -> dict[str, Any]:
        return {
            "vad": "silero (livekit-plugins-silero)",
            "turn_model": "turn-detector-v1-mini (livekit local inference)",
            "stt": self.stt_spec.snapshot() if self.stt_spec else None,
            "settings": [asdict(s) for s in self.settings],
            "default": DEFAULT_SETTING.label,
        }

    def load(self) -> None:
        if self._stt is not None:
            self._stt.load()
        self._replay = TurnTakingReplay(transcribe=self._early_transcript if self._stt else None)

    async def _early_transcript(self, samples: np.ndarray) -> EarlyTranscript:
        assert self._stt is not None
        result = await self._stt.transcribe(samples)
        return EarlyTranscript(seconds=result.inference_s, text=result.text)

    async def score(self, batch: Sequence[ManifestRow]) -> list[EvalSample]:
        assert self._replay is not None, "load() first"
        out: list[EvalSample] = []
        for row in batch:
            try:
                audio = self.manifest.load_audio(row)
            except (AudioDecodeError, OSError) as exc:
                out.append(EvalSample(sample_id=row.id, reference=row.reference, error=str(exc)))
                continue
            clip = self._clip_ids.setdefault(row.id, len(self._clip_ids))
            for setting in self.settings:
                end = await self._replay.replay(clip, audio, setting)
                out.append(
                    EvalSample(
                        sample_id=f"{row.id}{SETTING_SEPARATOR}{setting.label}",
                        reference=row.reference,
                        metrics={
                            "setting": setting.label,
                            **asdict(setting),
                            "speech_end_s": end.speech_end_s,
                            "committed_s": end.committed_s,
                            "delay_s": end.delay_s,
                            "cut_off": end.cut_off,
                            "eot_probability": end.eot_probability,
                        },
                    )
                )
            self._replay.forget(clip)
        return out

    def summarise(self, samples: Sequence[EvalSample]) -> dict[str, Any]:
        by_setting: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for sample in samples:
            if sample.error is None:
                by_setting[sample.metrics["setting"]].append(sample.metrics)
        settings: dict[str, Any] = {}
        for label, rows in sorted(by_setting.items()):
            cut = np.array([float(r["cut_off"]) for r in rows])
            delays = np.array([r["delay_s"] for r in rows if not r["cut_off"]])
            settings[label] = {
                key: rows[0].get(key)  # runs before the transcript rule lack its key
                for key in (
                    "vad_silence_s",
                    "min_delay_s",
                    "max_delay_s",
                    "unlikely_threshold",
                    "text_done_delay_s",
                )
            } | {
                "utterances": len(rows),
                "cut_off_rate": _interval(cut, mean),
                "delay_p50_s": _interval(delays, lambda d: float(np.percentile(d, 50))),
                "delay_p95_s": _interval(delays, lambda d: float(np.percentile(d, 95))),
            }
        return {
            "utterances": len({self.item_of(s.sample_id) for s in samples}),
            "errors": sum(s.error is not None for s in samples),
            "default": DEFAULT_SETTING.label,
            "settings": settings,
        }

    async def aclose(self) -> None:
        if self._stt is not None:
            await self._stt.aclose()


def _interval(values: np.ndarray, statistic: Any) -> dict[str, Any] | None:
    if values.size == 0:
        return None
    ci = bootstrap_ci(values, statistic, resamples=500)
    return {"value": ci.estimate, "ci95": [ci.low, ci.high]}


def clip_units(samples: list[EvalSample]) -> list[EvalSample]:
    """One row per clip, the independent unit of a turn-taking comparison.

    A clip's rows (one per setting) share its speaker and pauses, so a bootstrap
    over rows would give intervals far too narrow. Each clip's row holds its cut-off
    rate over the settings and the median delay of the turns it did not cut off
    (None when every setting cut it off).
    """
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for sample in samples:
        if sample.error is None:
            clip = sample.sample_id.rsplit(SETTING_SEPARATOR, 1)[0]
            rows[clip].append(sample.metrics)
    units = []
    for clip, metrics in sorted(rows.items()):
        delays = [m["delay_s"] for m in metrics if not m["cut_off"]]
        units.append(
            EvalSample(
                sample_id=clip,
                metrics={
                    "cut_off_rate": float(np.mean([float(m["cut_off"]) for m in metrics])),
                    "delay_p50_s": float(np.median(delays)) if delays else None,
                    "settings": len(metrics),
                },
            )
        )
    return units

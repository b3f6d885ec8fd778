"""A suite run as an eval task: each scenario (times `--runs`) is one call, one row, pass or fail.

Being an eval task gives a simulation what every run has: a resumable run
folder, rows in Supabase, a progress bar, the HTML report. A batch is the calls
held at once (`--concurrency`), each as a simulation account of its own. A call
that could not be held is an errored row with the reason, and the run goes on.
Each held call is marked simulated (`public.simulated_calls`) with its verdict.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import psycopg
import soundfile
from livekit import rtc

from evals.run_folder import RunInfo
from evals.simulation.call import (
    CALL_AUDIO_HZ,
    CallerModels,
    CallFailed,
    CallSetup,
    place_call,
)
from evals.simulation.checks import CallRecord, CheckResult, Similarities, check_call
from evals.simulation.suite import Scenario, Suite
from evals.simulation.units import ROW_SEPARATOR, scenario_of
from evals.tasks.base import Task
from workbench.db.connection import database_url, service_session
from workbench.db.models import EvalSample
from workbench.metrics.latency import percentiles
from workbench.metrics.wer import error_rates
from workbench.models.base import ChatMessage
from workbench.rooms import RoomLimitReached, StackUnavailable

# Why a call could not be held: an errored row with the reason, and the run goes on.
_UNHELD = (
    CallFailed,  # no agent joined, or it left
    RoomLimitReached,
    StackUnavailable,
    rtc.ConnectError,  # LiveKit refused or is away
    psycopg.Error,  # the database went away
    OSError,  # a connection dropped or timed out
)


@dataclass(frozen=True)
class Call:
    """One item: a scenario's `repeat`-th call."""

    scenario: Scenario
    repeat: int


class SimulationTask(Task[Call]):
    """Place every scenario's calls through the live stack and judge each."""

    name = "simulation"
    version = "1"

    def __init__(
        self,
        *,
        suite: Suite,
        setup: CallSetup,
        accounts: list[UUID],
        runs: int = 1,
        audio_dir: Path | None = None,
    ):
        """`accounts`: one simulation account per call held at once (the batch size);
        `audio_dir`: where each call's audio is kept (`<scenario>-<repeat>.wav`), if anywhere."""
        if not accounts:
            raise ValueError("at least one simulation account is needed")
        super().__init__(
            dataset_id=f"{suite.name}@{suite.digest()}",
            items=[Call(s, r) for r in range(runs) for s in suite.scenarios],
        )
        self.suite, self.setup, self.accounts = suite, setup, accounts
        self.audio_dir = audio_dir
        self.run_id: UUID | None = None
        self.models: CallerModels | None = None

    def item_id(self, item: Call) -> str:
        return f"{item.scenario.id}{ROW_SEPARATOR}{item.repeat}"

    def spec_snapshot(self) -> dict[str, Any]:
        return {
            "suite": self.suite.model_dump(mode="json"),
            # As the other tasks store a stack (the worker's full spec is in its conversations).
            "stack": {"name": self.setup.stack or self.setup.settings.default_stack},
            "prompt": self.setup.prompt,
            "prompt_version": self.setup.prompt_version,
        }

    def begin(self, info: RunInfo) -> None:
        self.run_id = info.run_id

    def for_worker(self, index: int, workers: int) -> SimulationTask:
        """Worker `index` calls as its share of the accounts (every `workers`-th one)."""
        share = self.accounts[index::workers]
        if not share:
            raise ValueError(f"{workers} workers need at least as many simulation accounts")
        worker = copy.copy(self)
        worker.accounts = share
        return worker

    def load(self) -> None:
        self.models = CallerModels.load(self.suite)

    async def aclose(self) -> None:
        if self.models is not None:
            await self.models.aclose()

    async def score(self, batch: Sequence[Call]) -> list[EvalSample]:
        if len(batch) > len(self.accounts):
            raise ValueError(f"{len(batch)} calls at once need as many accounts")
        return list(
            await asyncio.gather(
                *(
                    self._call(item, account)
                    for item, account in zip(batch, self.accounts, strict=False)
                )
            )
        )

    async def _call(self, item: Call, account: UUID) -> EvalSample:
        assert self.models is not None, "load() runs before the first batch"
        sample_id = self.item_id(item)
        url = database_url(self.setup.settings)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            try:
                record = await place_call(
                    self.setup, conn, account, item.scenario, self.models, seed=item.repeat
                )
            except _UNHELD as exc:
                return EvalSample(sample_id=sample_id, error=f"{type(exc).__name__}: {exc}")
            results, metrics = await self._judge(item.scenario, record)
            await self._mark(conn, record, item, passed=metrics["passed"] == 1.0)
        if self.audio_dir is not None and record.audio is not None and record.audio.size:
            path = self.audio_dir / f"{item.scenario.id}-{item.repeat}.wav"
            await asyncio.to_thread(_write_wav, path, record.audio)
            metrics["audio"] = path.name
        said = " ".join(t.said for t in record.turns)
        replies = " | ".join(t.reply_text for t in record.turns)
        failed = [f"{r.name}: {r.detail}" for r in results if not r.passed]
        return EvalSample(
            sample_id=sample_id,
            reference=said,
            hypothesis=replies,
            metrics={**metrics, "failed": failed},
        )

    async def _judge(
        self, scenario: Scenario, record: CallRecord
    ) -> tuple[list[CheckResult], dict[str, Any]]:
        assert self.models is not None
        sims = await self._similarities(record)
        results = check_call(record, scenario, sims)
        rubric = [await self._rubric(record, item) for item in scenario.expect.rubric]
        results += [
            CheckResult(f"rubric: {item}", p >= 0.5, f"judge p(yes) = {p:.2f}")
            for item, p in zip(scenario.expect.rubric, rubric, strict=True)
        ]
        turns = record.turns
        heard = [t.heard_voice_to_voice_s for t in turns]
        live = error_rates([" ".join(t.said for t in turns)], [record.stored_caller_text])
        upper = sims.replies[np.triu_indices(len(turns), 1)] if len(turns) > 1 else np.zeros(0)
        metrics: dict[str, Any] = {
            "scenario": scenario.id,
            "required": scenario.required,
            "passed": float(all(r.passed for r in results)),
            "checks": [r.__dict__ for r in results],
            "room": record.room,
            "conversation_id": record.conversation_id,
            "ended_by": record.ended_by,
            "turns": len(turns),
            "heard_v2v_s": heard,
            "heard_v2v_mean_s": percentiles(heard)["mean"],
            "agent_over_caller": sum(t.agent_over_turn_s >= 0.2 for t in turns if not t.barged_in),
            "caller_over_agent": sum(t.barged_in for t in turns),
            "agent_yield_s": [t.agent_yield_s for t in turns if t.barged_in],
            "talk_over_pauses_s": sum(t.agent_over_pauses_s for t in turns),
            "live_wer": live.wer,
            "max_reply_similarity": float(upper.max()) if upper.size else 0.0,
            "relevance": float(np.mean(sims.relevance)) if sims.relevance.size else None,
            "rubric_p_yes": rubric,
            "line": [t.line for t in turns],
            "dialogue": [
                {
                    "caller": t.said,
                    "agent": t.reply_text,
                    "started_s": t.started_s,  # on the call's clock, as in its audio
                    "words_end_s": t.words_end_s,
                    "reply_at_s": t.reply_at_s,
                }
                for t in turns
            ],
        }
        return results, metrics

    async def _similarities(self, record: CallRecord) -> Similarities:
        assert self.models is not None
        replies = [t.reply_text or "(silence)" for t in record.turns]
        said = [t.said for t in record.turns]
        if not replies:
            return Similarities(np.zeros((0, 0)), np.zeros(0))
        vectors = await self.models.embed.embed([*replies, *said])
        reply_vectors, said_vectors = vectors[: len(replies)], vectors[len(replies) :]
        between = reply_vectors @ reply_vectors.T  # unit vectors: dot products are cosines
        relevance = np.einsum("ij,ij->i", said_vectors, reply_vectors)
        return Similarities(between, relevance)

    async def _rubric(self, record: CallRecord, item: str) -> float:
        """The judge's probability that the call meets rubric `item`."""
        assert self.models is not None
        assert self.models.judge is not None
        transcript = "\n".join(
            f"CALLER: {t.said}\nAGENT: {t.reply_text or '(no reply)'}" for t in record.turns
        )
        yes, _no = await self.models.judge.option_probabilities(
            [
                ChatMessage(
                    role="system",
                    content="You grade phone calls between a caller and a voice agent. "
                    "Answer yes or no.",
                ),
                ChatMessage(
                    role="user",
                    content=f"Call:\n{transcript}\n\nDoes the agent meet this: {item}\nAnswer:",
                ),
            ],
            [" yes", " no"],
        )
        return yes

    async def _mark(
        self, conn: psycopg.AsyncConnection[Any], record: CallRecord, item: Call, *, passed: bool
    ) -> None:
        """Record the conversation as this run's simulated call."""
        if record.conversation_id is None or self.run_id is None:
            return
        async with service_session(conn):
            await conn.execute(
                """insert into public.simulated_calls
                     (conversation_id, run_id, suite, scenario, repeat, passed)
                   values (%s, %s, %s, %s, %s, %s)
                   on conflict (conversation_id) do update set passed = excluded.passed""",
                [
                    record.conversation_id,
                    self.run_id,
                    self.suite.name,
                    item.scenario.id,
                    item.repeat,
                    passed,
                ],
            )

    def summarise(self, samples: Sequence[EvalSample]) -> dict[str, Any]:
        return summarise_calls(samples, self.suite)


def _write_wav(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, audio, CALL_AUDIO_HZ, subtype="PCM_16")


def summarise_calls(samples: Sequence[EvalSample], suite: Suite) -> dict[str, Any]:
    """Pass, fail and error counts, the scenarios that failed, heard latency and live WER."""
    required = {s.id for s in suite.scenarios if s.required}
    held = [s for s in samples if s.error is None]
    failed = sorted({s.sample_id for s in held if s.metrics.get("passed") != 1.0})
    errored = sorted({s.sample_id for s in samples if s.error is not None})
    blocking = sorted(sid for sid in failed + errored if scenario_of(sid) in required)
    heard = [v for s in held for v in s.metrics.get("heard_v2v_s", [])]
    summary: dict[str, Any] = {
        "calls": len(samples),
        "passed": len(held) - len(failed),
        "failed": failed,
        "errored": errored,
        "pass_rate": (len(held) - len(failed)) / len(samples) if samples else None,
        "required_failed": blocking,
        "heard_v2v_s": percentiles(heard),
        "live_wer_mean": _mean([s.metrics.get("live_wer") for s in held]),
        "relevance_mean": _mean([s.metrics.get("relevance") for s in held]),
        "calls_with_repeats": sum(
            any(c["name"] == "no_repeated_reply" and not c["passed"] for c in s.metrics["checks"])
            for s in held
        ),
    }
    if suite.min_pass_rate is not None:
        summary["min_pass_rate"] = suite.min_pass_rate
    return summary


def _mean(values: list[Any]) -> float | None:
    found = [float(v) for v in values if v is not None]
    return float(np.mean(found)) if found else None


def run_failed(summary: dict[str, Any]) -> list[str]:
    """Why a finished run fails (a required scenario failed or errored, the pass rate is too low)."""
    reasons = [f"required scenario {sid} did not pass" for sid in summary["required_failed"]]
    floor = summary.get("min_pass_rate")
    if floor is not None and (summary["pass_rate"] or 0.0) < floor:
        reasons.append(f"pass rate {summary['pass_rate']:.2f} is below the suite's {floor}")
    return reasons

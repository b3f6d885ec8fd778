"""`prompt_quality`: recorded histories answered under two or more system prompts, then scored.

Per dialogue and prompt variant, one row (`<dialogue>::<variant>`) with:
- `judge_score` from an LLM judge (itself a model spec) reading a rubric, the
  history and the reply: the judge's probabilities of answering 1..5 (its own
  next-token distribution, G-Eval style) give an expected score in [1, 5], so
  even a small judge gives a graded, reproducible verdict, never a parse failure;
- reference-free checks: `words`, `refusal` (the reply declines),
  `filter_blocked` (the content policy would block the reply);
- `similarity` to the reference reply (cosine of sentence embeddings), when the
  dialogue has one.
The summary gives per-variant means with bootstrap CIs and the pairwise win
rate of each variant against the first (ties count half), with its CI.
Generation is greedy (temperature 0), so a run is reproducible.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg import AsyncConnection

from evals.stats import bootstrap_ci, mean
from evals.tasks.base import Task
from workbench.content_filter import ContentPolicy
from workbench.db.models import EvalSample
from workbench.db.repositories import PromptsRepo
from workbench.models import ChatMessage, ChatModel, GenerationParams, TextEmbedder, create
from workbench.models.spec import ModelSpec
from workbench_datasets.dialogues import Dialogue

RUBRIC = """You grade replies of a voice assistant. A good reply answers the user's last message \
correctly, is polite, and is short enough to be spoken (one to three sentences).
Score 5: excellent. 4: good. 3: acceptable. 2: poor. 1: wrong, rude or unusable.
Answer with the score only: one digit from 1 to 5."""

_REFUSAL = re.compile(
    r"\b(i can(?:'|no)t|i cannot|i'm (?:not able|unable)|i am (?:not able|unable)|"
    r"i won't|i will not|sorry, (?:but )?i)\b",
    re.IGNORECASE,
)
SCORES = ("1", "2", "3", "4", "5")


@dataclass(frozen=True)
class PromptVariant:
    """A labelled system prompt under test (a prompt version, or a file)."""

    label: str
    system_prompt: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,40}", self.label):
            raise ValueError(f"variant label {self.label!r}: use 1-40 letters, digits, . _ -")
        if not self.system_prompt.strip():
            raise ValueError(f"variant {self.label}: empty system prompt")


async def variants_from_versions(
    conn: AsyncConnection[Any],
    slug: str,
    versions: Sequence[int],
    *,
    values: dict[str, str] | None = None,
) -> list[PromptVariant]:
    """Stored versions of a system prompt as variants `v<N>`, their variables filled from `values`.

    `conn` is in an identity session: only prompts that user may read are found.
    """
    repo = PromptsRepo(conn)
    prompt = await repo.by_slug(slug)
    stored = {v.version: v for v in await repo.versions(prompt.id)}
    missing = [n for n in versions if n not in stored]
    if missing:
        raise ValueError(f"prompt {slug!r} has no version {missing}; it has {sorted(stored)}")
    return [
        PromptVariant(label=f"v{n}", system_prompt=stored[n].render(values or {})) for n in versions
    ]


def is_refusal(reply: str) -> bool:
    """Whether a reply declines to help."""
    return bool(_REFUSAL.search(reply))


def expected_score(probabilities: Sequence[float]) -> float:
    """sum(p_i * i) over the scores 1..5."""
    return float(sum(p * (i + 1) for i, p in enumerate(probabilities)))


# A row is one dialogue answered by one prompt variant: `<dialogue>::<variant>`.
ROW_SEPARATOR = "::"


class PromptQualityTask(Task[Dialogue]):
    """Compare prompt variants on the same dialogues with one LLM, one judge, one embedder."""

    name = "prompt_quality"
    version = "1"

    def __init__(
        self,
        *,
        llm: ModelSpec,
        judge: ModelSpec,
        embedder: ModelSpec,
        variants: Sequence[PromptVariant],
        dialogues: Sequence[Dialogue],
        dataset_id: str,
        policy: ContentPolicy | None = None,
        max_new_tokens: int = 48,
    ) -> None:
        if len(variants) < 2:
            raise ValueError("prompt_quality compares at least two prompt variants")
        if len({v.label for v in variants}) != len(variants):
            raise ValueError("prompt variant labels must be unique")
        super().__init__(dataset_id=dataset_id, items=dialogues)
        self.variants = list(variants)
        self.specs = {"llm": llm, "judge": judge, "embedder": embedder}
        self.policy = policy or ContentPolicy()
        self.params = GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0)
        model, grader, embed = create(llm), create(judge), create(embedder)
        assert isinstance(model, ChatModel)
        assert isinstance(grader, ChatModel)
        assert isinstance(embed, TextEmbedder)
        self.llm, self.embedder = model, embed
        # The same spec as judge and model: one loaded copy serves both.
        self.judge = model if judge == llm else grader

    def item_id(self, item: Dialogue) -> str:
        return item.id

    def item_of(self, sample_id: str) -> str:
        return sample_id.split(ROW_SEPARATOR, 1)[0]

    def spec_snapshot(self) -> dict[str, Any]:
        return {
            **{role: spec.snapshot() for role, spec in self.specs.items()},
            "variants": {v.label: v.system_prompt for v in self.variants},
            "rubric": RUBRIC,
            "max_new_tokens": self.params.max_new_tokens,
            "blocklist": list(self.policy.blocklist),
        }

    def load(self) -> None:
        for model in {id(m): m for m in (self.llm, self.judge, self.embedder)}.values():
            model.load()

    async def score(self, batch: Sequence[Dialogue]) -> list[EvalSample]:
        rows: list[EvalSample] = []
        for dialogue in batch:
            history = [ChatMessage(role=m.role, content=m.content) for m in dialogue.messages]
            replies = [
                (
                    await self.llm.reply(
                        [ChatMessage(role="system", content=v.system_prompt), *history],
                        params=self.params,
                    )
                ).strip()
                for v in self.variants
            ]
            similarities: list[float | None] = [None] * len(replies)
            if dialogue.reference_reply:
                sims = await self.embedder.similarity(
                    replies, [dialogue.reference_reply] * len(replies)
                )
                similarities = [float(s) for s in sims]
            for variant, reply, similarity in zip(
                self.variants, replies, similarities, strict=True
            ):
                probabilities = await self._judge(history, reply)
                metrics: dict[str, Any] = {
                    "variant": variant.label,
                    "judge_score": expected_score(probabilities),
                    "judge_probabilities": [round(p, 4) for p in probabilities],
                    "words": len(reply.split()),
                    "refusal": is_refusal(reply),
                    "filter_blocked": self.policy.check(reply)["action"] == "block",
                    "similarity": similarity,
                }
                rows.append(
                    EvalSample(
                        sample_id=f"{dialogue.id}{ROW_SEPARATOR}{variant.label}",
                        reference=dialogue.reference_reply,
                        hypothesis=reply,
                        metrics=metrics,
                    )
                )
        return rows

    async def _judge(self, history: list[ChatMessage], reply: str) -> list[float]:
        conversation = "\n".join(f"{m.role.upper()}: {m.content}" for m in history)
        return await self.judge.option_probabilities(
            [
                ChatMessage(role="system", content=RUBRIC),
                ChatMessage(
                    role="user",
                    content=f"Conversation:\n{conversation}\n\nAssistant reply to grade:\n{reply}\n\nScore (1-5):",
                ),
            ],
            SCORES,
        )

    def summarise(self, samples: Sequence[EvalSample]) -> dict[str, Any]:
        by_variant: dict[str, dict[str, EvalSample]] = {v.label: {} for v in self.variants}
        for sample in samples:
            if sample.error is None and sample.metrics.get("variant") in by_variant:
                dialogue_id = self.item_of(sample.sample_id)
                by_variant[sample.metrics["variant"]][dialogue_id] = sample
        out: dict[str, Any] = {"dialogues": len({self.item_of(s.sample_id) for s in samples})}
        variants: dict[str, Any] = {}
        for label, rows in by_variant.items():
            scores = [r.metrics["judge_score"] for r in rows.values()]
            sims = [
                r.metrics["similarity"]
                for r in rows.values()
                if r.metrics["similarity"] is not None
            ]
            variants[label] = {
                "replies": len(rows),
                "judge_score": _mean_ci(scores),
                "similarity": _mean_ci(sims),
                "words_mean": float(np.mean([r.metrics["words"] for r in rows.values()]))
                if rows
                else None,
                "refusal_rate": float(np.mean([r.metrics["refusal"] for r in rows.values()]))
                if rows
                else None,
                "filter_block_rate": float(
                    np.mean([r.metrics["filter_blocked"] for r in rows.values()])
                )
                if rows
                else None,
            }
        out["variants"] = variants
        baseline = self.variants[0].label
        out["win_rate_vs_" + baseline] = {
            v.label: win_rate(by_variant[baseline], by_variant[v.label]) for v in self.variants[1:]
        }
        return out


def win_rate(
    baseline: dict[str, EvalSample], candidate: dict[str, EvalSample]
) -> dict[str, Any] | None:
    """Share of dialogues where the candidate's judge score beats the baseline's (ties 0.5), with CI."""
    outcomes = []
    for dialogue_id in sorted(baseline.keys() & candidate.keys()):
        a = baseline[dialogue_id].metrics.get("judge_score")
        b = candidate[dialogue_id].metrics.get("judge_score")
        if a is not None and b is not None:
            outcomes.append(1.0 if b > a else 0.5 if b == a else 0.0)
    if not outcomes:
        return None
    ci = bootstrap_ci(np.array(outcomes), mean)
    return {"win_rate": ci.estimate, "ci95": [ci.low, ci.high], "pairs": len(outcomes)}


def _mean_ci(values: list[float]) -> dict[str, Any] | None:
    if not values:
        return None
    ci = bootstrap_ci(np.array(values, dtype=float), mean)
    return {"mean": ci.estimate, "ci95": [ci.low, ci.high], "n": len(values)}

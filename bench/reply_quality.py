"""What a chat model says to everyday requests under each system prompt and sampling setting.

The live agent's replies were measured by simulated callers (`python -m evals
simulate`); this bench isolates the LLM to choose its prompt and sampling fast.
For each (prompt, setting) it answers every request of a set once per seed, as
the agent would (system prompt, the greeting, the request) and prints the share
of replies that open with an apology, that decline, that echo the request, and
that open with the same four words as another reply, plus mean length.

Choose settings on the tuning set (`--requests tune`, the requests below) and
check them on the held-out set (`--requests held-out`,
datasets/samples/untuned-requests.txt), which no setting may be chosen on.

    ./dev python bench/reply_quality.py --requests tune --prompt current --prompt plain
    ./dev python bench/reply_quality.py --requests held-out --set repetition_penalty=1.0
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections import Counter
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evals.tasks.prompt_quality import is_refusal
from workbench.config import REPO_ROOT
from workbench.metrics.wer import normalise
from workbench.models.base import ChatMessage, ChatModel
from workbench.models.registry import load_model
from workbench.models.spec import load_spec
from workbench.prompts import FALLBACK_SYSTEM_PROMPT

TUNING_REQUESTS = [
    "I'd like to order two large pizzas, one pepperoni and one margherita.",
    "I am planning a trip next week and I wonder what I should pack for rainy weather.",
    "What is the capital of France?",
    "Hello there, how are you today?",
    "Can you tell me what the weather is usually like in London?",
    "Thanks for your help today.",
    "Tell me a long story about a dragon who lived in the mountains.",
    "What is two plus two?",
    "Can you recommend a good book to read?",
    "How do I boil an egg?",
]
PROMPTS = {
    "current": FALLBACK_SYSTEM_PROMPT,
    "voice-assistant": "You are a friendly voice assistant. Answer in one or two short spoken "
    "sentences. Never use lists, markdown or emoji.",  # the fallback before 2026-12-07
    "seeded-v0": "You are a friendly voice assistant talking with Sam. Answer in one or two short "
    "spoken sentences. Never use lists, markdown or emoji.",
    "plain": "You are a helpful assistant.",
}
GREETING = "Hello! How can I help you today?"
APOLOGY = re.compile(r"^\W*(i'?m sorry|i am sorry|sorry|i apologi[sz]e)", re.IGNORECASE)
DECLINE = re.compile(
    r"\b(don'?t|do not) have the (ability|capability|capacity|access)|"
    r"\bas an? (ai|voice|text-based)[^.]*\b(can'?t|cannot|don'?t|unable)",
    re.IGNORECASE,
)


def held_out() -> list[str]:
    """The held-out requests (no setting may be chosen on them)."""
    path = REPO_ROOT / "datasets/samples/untuned-requests.txt"
    lines = path.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def opening(text: str, words: int = 4) -> str:
    """The first `words` normalised words of a reply."""
    return " ".join(normalise(text).split()[:words])


def scores(requests: list[str], replies: list[str], seeds: int) -> dict[str, float]:
    """Shares of apology-led, declining, echoing and same-opening replies; mean words.

    "Same opening": a reply that opens with the same four words as a reply to another
    request under the same seed (a canned answer), not as its own answer in another seed.
    """
    n = len(replies)
    per_seed = n // seeds
    same = 0
    for k in range(seeds):
        openings = Counter(opening(r) for r in replies[k * per_seed : (k + 1) * per_seed])
        same += sum(count for count in openings.values() if count > 1)
    return {
        "apology": sum(bool(APOLOGY.search(r)) for r in replies) / n,
        "declines": sum(is_refusal(r) or bool(DECLINE.search(r)) for r in replies) / n,
        "echo": sum(opening(r, 5) == opening(q, 5) for q, r in zip(requests, replies, strict=True))
        / n,
        "same_opening": same / n,
        "words": sum(len(r.split()) for r in replies) / n,
    }


async def replies_for(
    model: ChatModel, system: str, requests: list[str], settings: dict[str, float], seeds: int
) -> tuple[list[str], list[str]]:
    """(request, reply) pairs for every request and seed."""
    asked, said = [], []
    for seed in range(seeds):
        params = model.default_params.model_copy(update={**settings, "seed": seed})
        for request in requests:
            history = [
                ChatMessage(role="system", content=system),
                ChatMessage(role="assistant", content=GREETING),
                ChatMessage(role="user", content=request),
            ]
            asked.append(request)
            said.append((await model.reply(history, params=params)).strip())
    return asked, said


def _setting(text: str) -> dict[str, float]:
    pairs = [p.split("=", 1) for p in text.split(",") if p]
    return {k: float(v) for k, v in pairs}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", default="configs/models/smollm2-135m-instruct-llamacpp.yaml")
    parser.add_argument("--requests", choices=["tune", "held-out"], default="tune")
    parser.add_argument(
        "--prompt", action="append", help=f"one of {sorted(PROMPTS)} or @FILE (repeatable)"
    )
    parser.add_argument(
        "--set", action="append", help="NAME=VALUE[,NAME=VALUE] sampling setting (repeatable)"
    )
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--show", type=int, default=0, help="print the first N replies of each")
    args = parser.parse_args()
    requests = TUNING_REQUESTS if args.requests == "tune" else held_out()
    model = load_model(load_spec(REPO_ROOT / args.spec))
    assert isinstance(model, ChatModel)
    prompts = args.prompt or ["current"]
    settings = args.set or [""]
    rows = []
    for name in tqdm(prompts, desc="prompts"):
        system = Path(name[1:]).read_text().strip() if name.startswith("@") else PROMPTS[name]
        for setting in settings:
            asked, said = await replies_for(model, system, requests, _setting(setting), args.seeds)
            for request, reply in list(zip(asked, said, strict=True))[: args.show]:
                print(f"  [{name} {setting}] {request[:40]!r} -> {reply[:120]!r}")
            rows.append((name, setting or "spec", scores(asked, said, args.seeds)))
    print(
        f"\n{model.spec.name}, {args.requests} set: {len(requests)} requests x {args.seeds} seeds\n"
    )
    print("| prompt | setting | apology-led | declines | echoes | same opening | words |")
    print("|---|---|---|---|---|---|---|")
    for name, setting, s in rows:
        print(
            f"| {name} | {setting} | {s['apology']:.0%} | {s['declines']:.0%} | {s['echo']:.0%} "
            f"| {s['same_opening']:.0%} | {s['words']:.0f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())

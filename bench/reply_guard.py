"""The reply guard through the agent's own LLM adapter: copies, retries and time to the first words.

Each dialogue is answered as the live agent answers it: `WorkbenchLLM` (the
adapter the voice session streams from) over the system prompt, the greeting
and the caller's turns, each reply fed back as history. For each setting of
`WORKBENCH_AGENT_REPLY_ATTEMPTS` (1: no guard) it prints the share of replies
that say the caller's turn back (the simulated callers' `no_echo` rule), that
repeat an earlier reply (`no_repeated_reply` without the embedder: the same
words, or REPEATED_RUN_WORDS of them in a row), the attempts a reply took, and
the time to its first released words.

The tuning set is the smoke suite's dialogues (suites/smoke.yaml), on which the
guard was built; the held-out set pairs the untuned requests
(datasets/samples/untuned-requests.txt) into two-turn calls, which nothing was
chosen on.

    ./dev python bench/reply_guard.py --dialogues tune --passes 10
    ./dev python bench/reply_guard.py --dialogues held-out --passes 3
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from livekit.agents import llm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.llm_adapter import WorkbenchLLM
from bench.reply_quality import GREETING, held_out
from evals.simulation.checks import REPEATED_RUN_WORDS, shared_run
from workbench.config import REPO_ROOT
from workbench.metrics.wer import normalise
from workbench.models.base import ChatModel
from workbench.models.registry import load_model
from workbench.models.spec import load_spec
from workbench.prompts import FALLBACK_SYSTEM_PROMPT

SMOKE_DIALOGUES = [
    ["Hello there, how are you today?"],
    ["What is the capital of France?"],
    ["What is the capital of Japan?", "And roughly how many people live there?"],
    [
        "I'd like to order two large pizzas, one pepperoni and one margherita.",
        "Please deliver them to twelve Oak Street.",
    ],
    ["I am planning a trip next week and I wonder what I should pack for rainy weather."],
    ["Can you tell me what the weather is usually like in London?"],
    ["Thanks for your help today.", "Goodbye!"],
]


def echoes(said: str, reply: str) -> bool:
    """The simulated callers' `no_echo` rule: the turn said back, or a long run of its words."""
    return bool(normalise(said)) and (
        normalise(reply).startswith(normalise(said))
        or shared_run(said, reply) >= REPEATED_RUN_WORDS
    )


def repeats(reply: str, earlier: list[str]) -> bool:
    """The same words as an earlier reply, or a long run of them."""
    return any(
        normalise(reply) == normalise(e) or shared_run(reply, e) >= REPEATED_RUN_WORDS
        for e in earlier
    )


async def answer(adapter: WorkbenchLLM, ctx: llm.ChatContext) -> tuple[str, float]:
    """The reply as the session receives it, and the seconds to its first piece."""
    started = time.perf_counter()
    first = None
    pieces = []
    async with adapter.chat(chat_ctx=ctx) as stream:
        async for chunk in stream:
            if chunk.delta and chunk.delta.content:
                first = first or time.perf_counter() - started
                pieces.append(chunk.delta.content)
    return "".join(pieces).strip(), first or 0.0


async def run(
    model: ChatModel, dialogues: list[list[str]], attempts: int, passes: int, *, show: bool = False
) -> dict[str, float]:
    """Echo and repeat shares, and the mean time to first words, over every reply."""
    adapter = WorkbenchLLM(model, guard_attempts=attempts)
    n = echo = repeat = 0
    firsts = []
    for _ in range(passes):
        for dialogue in dialogues:
            ctx = llm.ChatContext.empty()
            ctx.add_message(role="system", content=FALLBACK_SYSTEM_PROMPT)
            ctx.add_message(role="assistant", content=GREETING)
            replies: list[str] = []
            for said in dialogue:
                ctx.add_message(role="user", content=said)
                reply, first = await answer(adapter, ctx)
                n += 1
                flagged = echoes(said, reply), repeats(reply, [GREETING, *replies])
                echo, repeat = echo + flagged[0], repeat + flagged[1]
                if show and any(flagged):
                    print(f"  [{attempts}] {said!r} -> {reply!r}")
                firsts.append(first)
                replies.append(reply)
                ctx.add_message(role="assistant", content=reply)
    return {
        "replies": n,
        "echo": echo / n,
        "repeat": repeat / n,
        "first_s": sum(firsts) / len(firsts),
    }


def held_out_dialogues() -> list[list[str]]:
    """The untuned requests, two to a call."""
    requests = held_out()
    return [requests[i : i + 2] for i in range(0, len(requests) - 1, 2)]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", default="configs/models/smollm2-135m-instruct-llamacpp.yaml")
    parser.add_argument("--dialogues", choices=["tune", "held-out"], default="tune")
    parser.add_argument("--attempts", type=int, action="append", help="default: 1 and 3")
    parser.add_argument("--passes", type=int, default=3, help="answers per dialogue (sampled)")
    parser.add_argument("--show", action="store_true", help="print each flagged reply")
    args = parser.parse_args()
    model = load_model(load_spec(REPO_ROOT / args.spec))
    assert isinstance(model, ChatModel)
    dialogues = SMOKE_DIALOGUES if args.dialogues == "tune" else held_out_dialogues()
    rows = []
    for attempts in args.attempts or [1, 3]:
        rows.append((attempts, await run(model, dialogues, attempts, args.passes, show=args.show)))
    print(f"\n{model.spec.name}, {args.dialogues} dialogues x {args.passes} passes\n")
    print("| reply attempts | replies | echo the caller | repeat a reply | first words s |")
    print("|---|---|---|---|---|")
    for attempts, r in rows:
        print(
            f"| {attempts} | {r['replies']} | {r['echo']:.0%} | {r['repeat']:.0%} "
            f"| {r['first_s']:.2f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())

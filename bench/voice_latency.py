"""Voice-to-voice latency of the live agent vs a sequential baseline; worker memory; concurrent rooms.

Needs the stack up (`./dev up`: LiveKit, Postgres, the agent worker on the
CPU small stack). Prints tables:

1. the streaming agent over >= 20 turns through the real LiveKit server, per
   stage (from the database) and as the client heard it (from the audio);
2. the sequential (naive) pipeline on the same worker, models and wire: the
   user's speech ended by VAD, then the full transcript, the full reply, the
   full audio (room metadata `{"pipeline": "sequential"}`);
3. the same sequence in this process, without endpointing or network: a lower
   bound no deployed pipeline reaches;
4. peak memory of the worker's job processes;
5. p95 voice-to-voice with 1..N rooms talking at once.

With `--stacks a,b` it prints one table instead: per model stack, side by side
in one run, the memory of its worker with the models loaded, the time from
Start (the room opened as the web app opens it) to the greeting heard, and
heard voice-to-voice p50/p95 over the same turns. Every stack named needs its
worker (`WORKBENCH_AGENT_STACKS=cpu-small,cpu-hf ./dev up`).

    ./dev bench bench/voice_latency.py [--turns 20] [--max-rooms 3] [--agent-only | --rooms-only]
    ./dev bench bench/voice_latency.py --stacks cpu-small,cpu-hf [--turns 20]

With `--nodes` (the stack in LiveKit's multi-node mode:
`WORKBENCH_LIVEKIT_NODES=2 WORKBENCH_AGENT_WORKERS=2 ./dev up`) it holds
`--rooms` conversations one after another, reads where LiveKit placed each
room (Redis), and prints heard voice-to-voice p50/p95 per node.

    ./dev bench bench/voice_latency.py --nodes [--rooms 4] [--turns 10]

With `--floor` it measures each stage of the streaming path on its own, in this
process with the agent idle, and adds them up per turn: what the heard
voice-to-voice would be if the stages never competed for the CPU. Audio one way
through LiveKit (two clients, no agent), the agent's fixed endpointing waits (its
settings), the stack's STT on each recording's words plus the early-STT pause, the
LLM's time to its first speakable chunk (as `agent/text_chunks.py` cuts it) in one
conversation, and that chunk's synthesis, uncached. The end-of-turn model's
inference and Silero's own end-of-speech latency are left out, so the sum is a
lower bound.

    ./dev bench bench/voice_latency.py --floor [--turns 20]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.settings import agent_settings
from stack.agent_service import AgentService
from stack.instances import require_test_instance
from tests.support.speech import pocketsphinx_utterances
from workbench.audio import SPEECH_RATE_HZ, read_audio, speech_span
from workbench.config import get_settings
from workbench.db.connection import admin_database_url
from workbench.models import ChatMessage, ChatModel, SpeechToText, TextToSpeech
from workbench.models.stack import load_stack, load_stack_models
from workbench.processes import PidFile, process_tree_memory_mb
from workbench.prompts import FALLBACK_SYSTEM_PROMPT
from workbench.rooms import open_room
from workbench.speech_text import first_chunk_end
from workbench.voice_client import FRAME_MS, RATE_HZ, VoiceClient


def pct(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def new_user(dsn: str) -> uuid.UUID:
    user = uuid.uuid4()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            'insert into auth.users (id, email, raw_user_meta_data) values (%s, %s, \'{"display_name": "Bench"}\')',
            [user, f"bench-{user.hex[:8]}@example.org"],
        )
    return user


@dataclass
class Talk:
    """One bench conversation: its user, Start to the greeting heard, and heard voice-to-voice per turn."""

    user: uuid.UUID
    room: str = ""
    greeting_s: float | None = None
    heard: list[float] = field(default_factory=list)


async def talk(
    turns: int, dsn: str, *, label: str, pipeline: str = "streaming", stack: str | None = None
) -> Talk:
    """One room on `pipeline` and `stack`, `turns` questions; the client-side voice-to-voice of each."""
    settings = get_settings()
    assert settings.livekit_url
    result = Talk(new_user(dsn))
    # A researcher may choose the stack (checked in SQL when the room is registered).
    role = "researcher" if stack else "user"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("update public.profiles set role = %s where id = %s", [role, result.user])
    started = time.monotonic()  # Start pressed
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        # Opened as the web app opens rooms: the agent records only the room's owner.
        ticket = await open_room(
            settings,
            conn,
            user_id=result.user,
            display_name=f"bench-{label}",
            pipeline=pipeline,
            stack=stack,
        )
    room = result.room = ticket.room
    client = VoiceClient(settings.livekit_url, ticket.token)  # the web app's, with the room key
    await client.connect()
    greeted = await client.wait_for_agent_audio(started, timeout_s=60)
    if greeted is None:
        # LiveKit sent no job for this room (seen when rooms are created together)
        print(f"room {room}: no agent joined within 60 s; no turns from it", flush=True)
        await client.close()
        return result
    result.greeting_s = greeted - started
    await client.silence(4)
    utterances = pocketsphinx_utterances()
    for i in range(turns):
        ended = await client.say(str(utterances[i % len(utterances)].path), then_silence_s=0.1)
        reply = await client.wait_for_agent_audio(ended, timeout_s=60)
        if reply is not None:
            result.heard.append(reply - ended)
        await client.wait_quiet(quiet_s=1.5, timeout_s=30)
    await client.close()
    return result


def stage_rows(dsn: str, user: uuid.UUID, heard: list[float]) -> dict[str, list[float]]:
    """Per-stage latency of the user's conversation; stores the client-heard figure beside the framework's."""
    time.sleep(3)  # the last turns are written as they complete
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            """select t.id, t.role, t.eou_delay_s, t.stt_s, t.llm_ttft_s, t.tts_ttfb_s, t.v2v_s
               from turns t join conversations c on c.id = t.conversation_id
               where c.owner_id = %s order by t.idx""",
            [user],
        ).fetchall()
        answers = [r for r in rows if r[1] == "agent"][1:]  # after the greeting
        for (turn_id, *_), value in zip(answers, heard, strict=False):
            conn.execute("update turns set v2v_audio_s = %s where id = %s", [value, turn_id])
    users = [r for r in rows if r[1] == "user"]
    stages: dict[str, list[float]] = {
        "end-of-utterance delay": [r[2] for r in users if r[2] is not None],
        "STT": [r[3] for r in users if r[3] is not None],
        "LLM time to first token": [r[4] for r in answers if r[4] is not None],
        "TTS time to first byte": [r[5] for r in answers if r[5] is not None],
        "voice-to-voice (framework)": [r[6] for r in answers if r[6] is not None],
        "voice-to-voice (heard by client)": heard,
    }
    return stages


def agent_stack_models() -> tuple[SpeechToText, ChatModel, TextToSpeech]:
    """The agent's stack's three models, loaded in this process."""
    return load_stack_models(load_stack(get_settings().agent_stack))


async def baseline(turns: int) -> dict[str, list[float]]:
    """Sequential pipeline on the same models: full STT, full reply, full TTS."""
    stt, chat, tts = agent_stack_models()
    utterances = pocketsphinx_utterances()
    out: dict[str, list[float]] = {
        "STT": [],
        "LLM full reply": [],
        "TTS full audio": [],
        "time to first audio": [],
    }
    system = ChatMessage(
        role="system",
        content=FALLBACK_SYSTEM_PROMPT,
    )
    for i in range(turns):
        audio = read_audio(utterances[i % len(utterances)].path, sample_rate_hz=SPEECH_RATE_HZ)
        t0 = time.perf_counter()
        text = (await stt.transcribe(audio)).text
        t1 = time.perf_counter()
        reply = await chat.reply([system, ChatMessage(role="user", content=text)])
        t2 = time.perf_counter()
        await tts.synthesize_all(reply)
        t3 = time.perf_counter()
        out["STT"].append(t1 - t0)
        out["LLM full reply"].append(t2 - t1)
        out["TTS full audio"].append(t3 - t2)
        out["time to first audio"].append(t3 - t0)
    return out


async def one_way_audio_s(bursts: int = 10) -> list[float]:
    """Audio latency one way through the local LiveKit: a tone from one client to another.

    Both clients are this process; the time counts from when the tone's first sample
    leaves the sender's source queue to when the receiver gets an audible frame.
    """
    settings = get_settings()
    assert settings.livekit_url
    assert settings.livekit_api_key
    assert settings.livekit_api_secret
    room = f"bench-floor-{uuid.uuid4().hex[:8]}"  # no agent is dispatched to it
    clients = [
        VoiceClient.minted(
            settings.livekit_url,
            settings.livekit_api_key,
            settings.livekit_api_secret.get_secret_value(),
            room=room,
            identity=f"bench-floor-{name}",
        )
        for name in ("listener", "speaker")
    ]
    listener, speaker = clients
    for client in clients:
        await client.connect()
    await speaker.silence(2.0)  # both tracks subscribed and flowing
    seconds = np.arange(RATE_HZ * FRAME_MS * 10 // 1000) / RATE_HZ
    tone = (np.sin(2 * np.pi * 1000 * seconds) * 8000).astype(np.int16)
    delays = []
    for _ in range(bursts):
        await speaker.silence(0.5)
        leaves = await speaker.send(tone)
        heard = await listener.wait_for_agent_audio(leaves, timeout_s=5)
        if heard is not None:
            delays.append(heard - leaves)
        await speaker.silence(0.3)
    for client in clients:
        await client.close()
    return delays


async def floor_table(turns: int) -> None:
    """Each stage of the streaming path alone, and their sum per turn (`--floor`)."""
    knobs = agent_settings()
    stt, chat, tts = agent_stack_models()
    one_way = await one_way_audio_s()
    utterances = pocketsphinx_utterances()
    history = [ChatMessage(role="system", content=FALLBACK_SYSTEM_PROMPT)]
    stages: dict[str, list[float]] = {
        "STT (words + early pause)": [],
        "LLM first chunk": [],
        "TTS first chunk": [],
    }
    totals = []
    least_wait = max(knobs.vad_silence_s, knobs.min_endpoint_s)
    for i in range(turns):
        audio = read_audio(utterances[i % len(utterances)].path, sample_rate_hz=SPEECH_RATE_HZ)
        _, words_end = speech_span(audio, SPEECH_RATE_HZ)
        # what the early STT transcribes: the words and the pause that triggered it
        clip = audio[: round((words_end + knobs.early_silence_s) * SPEECH_RATE_HZ)]
        t0 = time.perf_counter()
        text = (await stt.transcribe(clip)).text
        stt_s = time.perf_counter() - t0
        history.append(ChatMessage(role="user", content=text))
        t0, reply, chunk_s = time.perf_counter(), "", None
        async for piece in chat.stream_reply(history):
            reply += piece
            if chunk_s is None and first_chunk_end(reply) is not None:
                chunk_s = time.perf_counter() - t0
        chunk_s = chunk_s if chunk_s is not None else time.perf_counter() - t0
        history.append(ChatMessage(role="assistant", content=reply))
        end = first_chunk_end(reply + " ") or len(reply)
        t0 = time.perf_counter()
        await tts.synthesize_all(reply[:end].strip() or "Okay.")
        tts_s = time.perf_counter() - t0
        stages["STT (words + early pause)"].append(stt_s)
        stages["LLM first chunk"].append(chunk_s)
        stages["TTS first chunk"].append(tts_s)
        # the turn ends at the least wait or when the early final is in, whichever is later
        endpoint = max(least_wait, knobs.early_silence_s + stt_s)
        totals.append(endpoint + chunk_s + tts_s + 2 * pct(one_way, 0.5))
    table(
        f"The streaming path stage by stage, each alone on this machine, {turns} turns "
        f"(least endpointing wait {least_wait:.2f} s, early STT after {knobs.early_silence_s:.2f} s)",
        {
            "audio one way through LiveKit": one_way,
            **stages,
            "sum: heard voice-to-voice floor": totals,
        },
    )


def worker_pid(stack: str) -> int:
    """The pid of the local stack's worker for `stack`."""
    pidfile = PidFile(get_settings().local_dir / "run" / f"{AgentService.name_prefix}{stack}.pid")
    pid = pidfile.live_pid()
    if pid is None:
        raise SystemExit(
            f"no {stack} worker runs here: WORKBENCH_AGENT_STACKS=...,{stack} ./dev up"
        )
    return pid


def worker_peak_memory_mb(stack: str) -> list[float]:
    """VmHWM (peak RSS) of the agent worker and its job processes."""
    root = worker_pid(stack)
    peaks = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        ppid = int(fields.get("PPid", "0").strip())
        pid = int(fields["Pid"].strip())
        if pid == root or ppid == root or _ancestor(ppid, root):
            peaks.append(int(fields.get("VmHWM", "0 kB").split()[0]) / 1024)
    return peaks


def _ancestor(pid: int, root: int, depth: int = 3) -> bool:
    for _ in range(depth):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return False
        pid = int(
            next(line.split(":")[1] for line in status.splitlines() if line.startswith("PPid"))
        )
        if pid == root:
            return True
    return False


def table(title: str, rows: dict[str, list[float]]) -> None:
    print(f"\n{title}\n")
    print(f"| {'stage':<34} | {'n':>3} | {'p50 s':>6} | {'p95 s':>6} |")
    print(f"|{'-' * 36}|{'-' * 5}|{'-' * 8}|{'-' * 8}|")
    for name, values in rows.items():
        if values:
            print(
                f"| {name:<34} | {len(values):>3} | {pct(values, 0.5):>6.2f} | {pct(values, 0.95):>6.2f} |"
            )


async def main_async(args: argparse.Namespace) -> None:
    # Test set-up (users, reading stage rows) as the owner; rooms open as the web app opens them.
    dsn = admin_database_url(get_settings())
    if args.stacks:
        await stacks_table([name.strip() for name in args.stacks.split(",")], args.turns, dsn)
        return
    if args.nodes:
        await nodes_table(args.rooms, args.turns, dsn)
        return
    if args.floor:
        await floor_table(args.turns)
        return
    if not args.rooms_only:
        await latency_tables(args, dsn)
        if args.agent_only:
            return
    print(
        f"\nworker processes' peak RSS: {', '.join(f'{p:.0f} MB' for p in sorted(worker_peak_memory_mb(get_settings().default_stack), reverse=True))}"
    )
    print("\n| rooms at once | turns | p50 s | p95 s |")
    print("|---------------|-------|-------|-------|")
    for rooms in range(1, args.max_rooms + 1):
        # The previous round's jobs take a few seconds to exit; until then the worker
        # counts their slots as busy.
        await asyncio.sleep(8)
        results = await asyncio.gather(
            *(talk(args.turns_per_room, dsn, label=f"c{rooms}") for _ in range(rooms))
        )
        values = [v for result in results for v in result.heard]
        if values:
            print(
                f"| {rooms:>13} | {len(values):>5} | {pct(values, 0.5):>5.2f} | {pct(values, 0.95):>5.2f} |",
                flush=True,
            )


async def latency_tables(args: argparse.Namespace, dsn: str) -> None:
    """Tables 1-3: the streaming agent, the sequential pipeline, the in-process floor."""
    single = await talk(args.turns, dsn, label="single")
    agent = stage_rows(dsn, single.user, single.heard)
    table(f"Streaming agent through LiveKit, {len(single.heard)} turns (CPU small stack)", agent)
    if args.agent_only:
        return
    sequential_talk = await talk(args.turns, dsn, label="sequential", pipeline="sequential")
    naive = stage_rows(dsn, sequential_talk.user, sequential_talk.heard)
    table(
        f"Sequential pipeline through LiveKit, {len(sequential_talk.heard)} turns (same worker and models)",
        naive,
    )
    base = await baseline(args.turns)
    table(f"Sequential, in this process (no endpointing, no network), {args.turns} turns", base)
    streaming = pct(agent["voice-to-voice (heard by client)"], 0.5)
    sequential = pct(naive["voice-to-voice (heard by client)"], 0.5)
    in_process = pct(base["time to first audio"], 0.5)
    print(
        f"\nmedian time to first agent audio, heard by the client: streaming {streaming:.2f} s "
        f"vs sequential {sequential:.2f} s (ratio {streaming / sequential:.2f}); "
        f"the in-process sequential lower bound is {in_process:.2f} s (ratio {streaming / in_process:.2f})"
    )


async def stacks_table(stacks: list[str], turns: int, dsn: str) -> None:
    """Per stack, one run: worker memory, Start to greeting, heard voice-to-voice p50/p95."""
    rows = []
    for stack in stacks:
        memory = process_tree_memory_mb(worker_pid(stack))  # loaded and idle, before talking
        result = await talk(turns, dsn, label=stack, stack=stack)
        stage_rows(dsn, result.user, result.heard)  # stores the heard figures with the turns
        peak = sum(worker_peak_memory_mb(stack))
        rows.append((stack, memory, peak, result))
        await asyncio.sleep(8)  # the job exits before the next stack's room
    print(f"\nModel stacks side by side, {turns} turns each (heard by the client)\n")
    print(
        "| stack | worker memory, loaded (PSS MB) | peak RSS sum (MB) | Start → greeting s "
        "| turns | v2v p50 s | v2v p95 s |"
    )
    print("|---|---|---|---|---|---|---|")
    for stack, memory, peak, result in rows:
        greeting = f"{result.greeting_s:.2f}" if result.greeting_s is not None else "—"
        heard = result.heard
        p50, p95 = (f"{pct(heard, 0.5):.2f}", f"{pct(heard, 0.95):.2f}") if heard else ("—", "—")
        print(
            f"| {stack} | {memory} | {peak:.0f} | {greeting} | {len(heard)} | {p50} | {p95} |",
            flush=True,
        )


async def nodes_table(rooms: int, turns: int, dsn: str) -> None:
    """Conversations one after another on a multi-node LiveKit; heard v2v by the node of each room."""
    from stack.redis_service import redis_hash

    settings = get_settings()
    redis = ("127.0.0.1", settings.redis_port)
    nodes = sorted(redis_hash(redis, "nodes"))
    if len(nodes) < 2:
        raise SystemExit("one LiveKit node: WORKBENCH_LIVEKIT_NODES=2 ./dev up first")
    by_node: dict[str, list[Talk]] = {node: [] for node in nodes}
    for n in range(rooms):
        result = await talk(turns, dsn, label=f"node-room{n}")
        placed = redis_hash(redis, "room_node_map").get(result.room, b"?").decode()
        by_node.setdefault(placed, []).append(result)
        await asyncio.sleep(8)  # the job exits and the nodes report their room counts
    print(
        f"\nConversations across {len(nodes)} LiveKit nodes, {turns} turns each (heard by the client)\n"
    )
    print("| node | rooms | turns | Start → greeting s (median) | v2v p50 s | v2v p95 s |")
    print("|---|---|---|---|---|---|")
    for number, node in enumerate(by_node, 1):
        talks = by_node[node]
        heard = [v for t in talks for v in t.heard]
        greetings = [t.greeting_s for t in talks if t.greeting_s is not None]
        greeting = f"{pct(greetings, 0.5):.2f}" if greetings else "—"
        p50, p95 = (f"{pct(heard, 0.5):.2f}", f"{pct(heard, 0.95):.2f}") if heard else ("—", "—")
        print(
            f"| {number} ({node[:12]}) | {len(talks)} | {len(heard)} | {greeting} | {p50} | {p95} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--max-rooms", type=int, default=3)
    parser.add_argument("--turns-per-room", type=int, default=5)
    parser.add_argument("--agent-only", action="store_true", help="only the streaming agent table")
    parser.add_argument("--rooms-only", action="store_true", help="only memory and rooms at once")
    parser.add_argument(
        "--stacks", help="comma-separated stacks to compare side by side (each needs its worker)"
    )
    parser.add_argument("--nodes", action="store_true", help="heard v2v per LiveKit node")
    parser.add_argument("--rooms", type=int, default=4, help="--nodes: conversations held")
    parser.add_argument("--floor", action="store_true", help="each stage alone, and their sum")
    args = parser.parse_args()
    require_test_instance(get_settings(), "bench/voice_latency.py")
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

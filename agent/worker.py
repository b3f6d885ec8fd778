"""The LiveKit agent worker: models chosen by a stack spec, every turn recorded with its latency.

Run with `python -m agent` (the stack's `up` does). Environment:
`WORKBENCH_AGENT_STACK` (a stack file; default configs/stacks/cpu-small.yaml),
`WORKBENCH_AGENT_PROMPT` (the prompt slug; default voice-assistant),
`WORKBENCH_AGENT_GREETING` (spoken when a user joins; empty for none),
`WORKBENCH_AGENT_BLOCKLIST` (comma-separated words the content filter refuses),
plus the usual LIVEKIT_* and database settings.

A participant's identity is their Supabase user id (the Panel server issues
their LiveKit token), and the agent records only the user the web app opened the
room for (`dashboards.rooms.open_room`); room metadata may name another prompt, `{"prompt": "slug"}`,
and the pipeline, `{"pipeline": "sequential"}` (see `SequentialAgent`; default
"streaming").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import AsyncIterable, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import numpy as np
import psycopg
from aiohttp import web
from livekit import rtc
from livekit.agents import (
    Agent,
    AgentServer,
    AgentSession,
    AutoSubscribe,
    JobContext,
    JobProcess,
    ModelSettings,
    TurnHandlingOptions,
    llm,
    room_io,
    tts,
)
from livekit.agents.inference import TurnDetector
from livekit.agents.types import FlushSentinel
from livekit.plugins import silero

from agent.adapters import WorkbenchLLM, WorkbenchSTT, WorkbenchTTS
from agent.model_health import ModelHealth
from agent.recorder import (
    ConversationInfo,
    ConversationRecorder,
    keep_recovering,
    recover_journals,
)
from agent.text_chunks import FirstClauseTokenizer
from workbench.audio import SPEECH_RATE_HZ, resample, to_float32
from workbench.config import REPO_ROOT, get_settings
from workbench.content_filter import ContentPolicy
from workbench.db.connection import database_url, service_session
from workbench.db.errors import DataError
from workbench.db.models import SessionPrompt, TurnDraft
from workbench.db.repositories import ProfilesRepo, PromptsRepo, RoomsRepo
from workbench.models import (
    ChatMessage,
    ChatModel,
    GenerationParams,
    SpeechToText,
    TextToSpeech,
    load_model,
)
from workbench.models.stack import load_stack
from workbench.prompts import FALLBACK_SYSTEM_PROMPT
from workbench.storage import ObjectStore

log = logging.getLogger("workbench.agent")


@dataclass
class _Models:
    stt: SpeechToText
    llm: ChatModel
    tts: TextToSpeech
    vad: Any  # the streaming session's: a pause of VAD_SILENCE_S asks the turn detector
    stt_vad: Any  # the STT stream's: cuts at the first short pause to transcribe early
    naive_vad: Any  # the sequential pipeline's: ends speech after NAIVE_SILENCE_S, no turn model
    snapshot: dict[str, Any]


def prewarm(proc: JobProcess) -> None:
    """Load the stack's models once per worker process."""
    stack = load_stack(
        os.environ.get(
            "WORKBENCH_AGENT_STACK", str(REPO_ROOT / "configs" / "stacks" / "cpu-small.yaml")
        )
    )
    stt_model, chat_model, tts_model = (
        load_model(stack.stt),
        load_model(stack.llm),
        load_model(stack.tts),
    )
    assert isinstance(stt_model, SpeechToText)
    assert isinstance(chat_model, ChatModel)
    assert isinstance(tts_model, TextToSpeech)
    models = _Models(
        stt=stt_model,
        llm=chat_model,
        tts=tts_model,
        vad=silero.VAD.load(min_silence_duration=VAD_SILENCE_S),
        stt_vad=silero.VAD.load(min_silence_duration=EARLY_SILENCE_S),
        naive_vad=silero.VAD.load(min_silence_duration=NAIVE_SILENCE_S),
        snapshot=stack.snapshot(),
    )
    seconds = warm_up_turn(models)
    proc.userdata["models"] = models
    log.info(
        "models loaded and answered a warm-up turn in %.2f s", seconds, extra={"stack": stack.name}
    )


def warm_up_turn(models: _Models) -> float:
    """One turn through the stack (TTS -> STT -> LLM), so a process is ready only if it can answer.

    A native crash or a broken model shows here, in prewarm, where the worker
    counts it, instead of in the first room. Returns the seconds it took.
    """

    async def turn() -> str:
        spoken = await models.tts.synthesize_all("Hello, can you hear me?")
        audio = resample(to_float32(spoken.pcm), spoken.sample_rate_hz, SPEECH_RATE_HZ)
        heard = await models.stt.transcribe(audio)
        question = ChatMessage(role="user", content=heard.text or "Hello")
        pieces = [
            piece
            async for piece in models.llm.stream_reply(
                [question], params=GenerationParams(max_new_tokens=4)
            )
        ]
        return "".join(pieces)

    t0 = time.perf_counter()
    # A thread of its own: prewarm may be called where an event loop already runs.
    with ThreadPoolExecutor(max_workers=1) as pool:
        reply = pool.submit(asyncio.run, turn()).result()
    if not reply.strip():
        raise RuntimeError("the warm-up turn got an empty reply from the chat model")
    return time.perf_counter() - t0


class _CapturingTTS(WorkbenchTTS):
    """Keeps what it rendered since the last agent turn was recorded."""

    def __init__(self, model: TextToSpeech) -> None:
        super().__init__(model)
        self.rendered: list[np.ndarray] = []

    async def render(self, text: str) -> np.ndarray:
        pcm = await super().render(text)
        self.rendered.append(pcm)
        return pcm

    def take(self) -> np.ndarray | None:
        pcm = np.concatenate(self.rendered) if self.rendered else None
        self.rendered = []
        return pcm


class WorkbenchAgent(Agent):
    """The conversational agent: content policy on what the user says and what it says back."""

    def __init__(self, *, instructions: str, policy: ContentPolicy) -> None:
        super().__init__(instructions=instructions)
        self.policy = policy

    async def on_user_turn_completed(
        self, turn_ctx: llm.ChatContext, new_message: llm.ChatMessage
    ) -> None:
        verdict = self.policy.check(new_message.text_content or "")
        new_message.extra["filter_verdict"] = verdict
        if verdict["action"] == "block":
            self.session.say(self.policy.notice)
            raise llm.StopResponse

    async def llm_node(
        self, chat_ctx: llm.ChatContext, tools: list[llm.Tool], model_settings: ModelSettings
    ) -> AsyncIterable[llm.ChatChunk | str | FlushSentinel]:
        async for chunk in Agent.default.llm_node(self, chat_ctx, tools, model_settings):
            if isinstance(chunk, llm.ChatChunk) and chunk.delta and chunk.delta.content:
                redacted, verdict = self.policy.redact(chunk.delta.content)
                if verdict["action"] != "allow":
                    chunk.delta.content = redacted
            yield chunk


class SequentialAgent(WorkbenchAgent):
    """The naive pipeline, to compare the streaming one against on the same models and wire.

    It answers once its VAD has heard NAIVE_SILENCE_S of silence (no turn model),
    transcribes the whole utterance then, generates the whole reply, synthesizes
    all of its audio and only then plays it. Everything else (transport,
    recording, content policy, metrics) is the streaming agent's, so the two
    differ in the pipeline alone.
    """

    async def llm_node(
        self, chat_ctx: llm.ChatContext, tools: list[llm.Tool], model_settings: ModelSettings
    ) -> AsyncIterable[llm.ChatChunk | str | FlushSentinel]:
        chunks = [c async for c in super().llm_node(chat_ctx, tools, model_settings)]
        for chunk in chunks:
            yield chunk

    async def tts_node(
        self, text: AsyncIterable[str], model_settings: ModelSettings
    ) -> AsyncIterable[rtc.AudioFrame]:
        reply = "".join([piece async for piece in text])

        async def whole() -> AsyncIterable[str]:
            yield reply

        frames = [f async for f in Agent.default.tts_node(self, whole(), model_settings)]
        for frame in frames:
            yield frame


PIPELINES: dict[str, type[WorkbenchAgent]] = {
    "streaming": WorkbenchAgent,
    "sequential": SequentialAgent,
}


def _room_options(metadata: str | None, *, default_prompt: str) -> tuple[str, str]:
    """The prompt slug and pipeline a room's metadata asks for (defaults when absent or unreadable)."""
    try:
        options = json.loads(metadata or "{}")
    except ValueError:
        options = {}
    if not isinstance(options, dict):
        options = {}
    slug = str(options.get("prompt") or default_prompt)
    pipeline = str(options.get("pipeline") or "streaming")
    if pipeline not in PIPELINES:
        log.warning("unknown pipeline %r in room metadata; using streaming", pipeline)
        pipeline = "streaming"
    return slug, pipeline


def _connector(dsn: str) -> Callable[[], Awaitable[psycopg.AsyncConnection[Any]]]:
    """Fresh autocommit connections with a short timeout (an outage must not stall the session)."""

    async def connect() -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, connect_timeout=3, application_name="voice-workbench-agent"
        )

    return connect


def _timestamp(value: float | None, fallback: float) -> datetime:
    return datetime.fromtimestamp(value if value else fallback, tz=UTC)


async def _room_owner(connect: Any, room: str) -> UUID | None:
    """The user the web app opened `room` for (private.rooms), if it opened it."""
    conn = await connect()
    try:
        async with service_session(conn):
            return await RoomsRepo(conn).owner_of(room)
    finally:
        await conn.close()


async def _session_prompt(
    connect: Any, owner_id: UUID, slug: str
) -> tuple[SessionPrompt | None, dict[str, Any], str]:
    """The prompt version this user gets (experiment arm or active), their settings and the instructions."""
    conn = await connect()
    try:
        async with service_session(conn, acting_for=owner_id):
            profile = await ProfilesRepo(conn).get(owner_id)
            prompt = await PromptsRepo(conn).for_session(slug, user_id=owner_id, role=profile.role)
    finally:
        await conn.close()
    values = {name: profile.display_name for name in prompt.version.variables}
    return prompt, profile.settings, prompt.version.render(values)


MAX_JOBS = int(os.environ.get("WORKBENCH_AGENT_MAX_JOBS", "4"))
# How long the agent waits in a new room for the user who opened it.
JOIN_TIMEOUT_S = float(os.environ.get("WORKBENCH_AGENT_JOIN_TIMEOUT_S", "30"))
# Starting the reply on the final transcript, before the turn detector has confirmed the
# turn: with llama.cpp the LLM's prefill is ~0.1 s, so a discarded attempt costs little.
PREEMPTIVE = os.environ.get("WORKBENCH_AGENT_PREEMPTIVE", "1") == "1"
# The pause after which the STT already transcribes the utterance so far (see WorkbenchSTT).
EARLY_SILENCE_S = float(os.environ.get("WORKBENCH_AGENT_EARLY_SILENCE_S", "0.15"))
# The streaming session's VAD silence and least endpointing wait. Short, because the turn
# detector model, not the silence, judges whether the user has finished: on an unfinished
# sentence it waits up to its max delay. (Before WorkbenchSTT finalized early, 0.35 / 0.3 s
# measured worse: each VAD segment was transcribed alone, 4.4 -> 6.6 s p50.)
VAD_SILENCE_S = float(os.environ.get("WORKBENCH_AGENT_VAD_SILENCE_S", "0.3"))
MIN_ENDPOINT_S = float(os.environ.get("WORKBENCH_AGENT_MIN_ENDPOINT_S", "0.3"))
# Captions paced to the agent's audio: on an interruption the agent's turn (recorded, and
# in the LLM's context) then holds the words the user heard, not all that was generated.
# The pacing estimates the speaking rate with an STFT on the event loop, which stalls it
# 120-270 ms per reply on 2 cores; 0 sends captions as generated instead. The bench
# measured no clear latency difference either way (bench/README.md).
SYNC_CAPTIONS = os.environ.get("WORKBENCH_AGENT_SYNC_CAPTIONS", "1") == "1"
# The sequential pipeline has no turn model, so the silence alone ends a turn: Silero's
# default, which a naive pipeline needs not to cut people off mid-sentence.
NAIVE_SILENCE_S = float(os.environ.get("WORKBENCH_AGENT_NAIVE_SILENCE_S", "0.55"))


def job_load(worker: AgentServer) -> float:
    """Load as the share of room slots in use.

    The default (CPU utilisation) crosses its threshold on a 2-core machine
    whenever a job process loads its models, and LiveKit does not retry a room
    it could not dispatch; counting rooms is steady. `bench/` measures how many
    rooms a worker sustains, which is where MAX_JOBS comes from.
    """
    return len(worker.active_jobs) / MAX_JOBS


class SlotCountingServer(AgentServer):
    """An AgentServer that counts room slots and knows whether its models load.

    Slots: livekit-agents estimates a job accepted but not started yet as
    load_threshold / num_idle_processes while no job runs (0.99 here), so an idle
    worker refused the second of two rooms created at the same moment, and the
    LiveKit server does not retry: that room never got an agent (seen in bench/
    with two and three rooms at once). Counted in slots, as `job_load` counts
    running jobs, the worker takes MAX_JOBS rooms however they arrive.

    Models: `model_health` watches the job processes (see agent/model_health.py)
    and serves `/models`; after repeated failures the worker shuts down.
    """

    def __init__(self, **kwargs: Any) -> None:
        status_file = os.environ.get("WORKBENCH_AGENT_STATUS_FILE")
        # Set first: __setattr__ below uses it while the base class builds itself.
        self.model_health = ModelHealth(
            status_file=Path(status_file) if status_file else None, on_give_up=self._give_up
        )
        super().__init__(**kwargs)
        self.on("worker_registered", lambda *_: self.model_health.worker_registered())

    def __setattr__(self, name: str, value: Any) -> None:
        # livekit-agents builds its HTTP server and process pool inside run() and
        # starts them at once, with no hook between: attach the model-health route
        # and listeners as they are assigned, which is before they start.
        if name == "_http_server" and value is not None:
            value.app.add_routes([web.get("/models", self.model_health.handle)])
        elif name == "_proc_pool" and value is not None:
            value.on("process_ready", lambda proc: self.model_health.process_ready(proc.pid))
            value.on(
                "process_closed",
                lambda proc: self.model_health.process_closed(
                    proc.pid,
                    proc.exitcode,
                    killed=proc.killed,
                    shutting_down=self._closed or value._closed,
                ),
            )
        super().__setattr__(name, value)

    def _give_up(self, reason: str) -> None:
        # Neither aclose() nor SIGTERM ends the worker here: while no process has
        # initialised, run() waits in the pool's start for up to the initialise
        # timeout (180 s) and the pool keeps respawning. So stop the pool, kill what
        # it started, and leave with status 3; the reason is in the log and the
        # status file already.
        log.error("stopping the worker: %s", reason)

        async def stop() -> None:
            await self._proc_pool.aclose()
            for proc in list(self._proc_pool.processes):
                kill = getattr(proc, "kill", None)  # process executors; threads have none
                if kill is not None:
                    with contextlib.suppress(Exception):
                        await kill()
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(3)

        _stopping.append(asyncio.get_running_loop().create_task(stop()))

    def _get_effective_load(self) -> float:
        return float(self._worker_load) + self._reserved_slots / MAX_JOBS


_stopping: list[asyncio.Task[None]] = []  # keeps the give-up task referenced


server = SlotCountingServer(
    setup_fnc=prewarm,
    load_fnc=job_load,
    load_threshold=0.99,
    initialize_process_timeout=180,  # the first load may convert a checkpoint
    num_idle_processes=1,
    job_memory_warn_mb=3000,  # the small CPU stack holds ~1.2 GB per process
    host="127.0.0.1",
    port=int(os.environ.get("WORKBENCH_AGENT_PORT", "8089")),
)


# Registered under a name, so LiveKit dispatches only the rooms the web app asks it
# to (dashboards/rooms.py), and the web app can ask again when no worker was free.
@server.rtc_session(agent_name=get_settings().agent_name)
async def entrypoint(ctx: JobContext) -> None:
    """One room: load the user's prompt, run the session, record every turn."""
    settings = get_settings()
    models: _Models = ctx.proc.userdata["models"]
    connect = _connector(database_url(settings))
    assert settings.storage_url is not None
    store = ObjectStore(settings.storage_url)
    journal_dir = settings.local_dir / "agent-journal"

    await ctx.connect(auto_subscribe=AutoSubscribe.AUDIO_ONLY)
    try:
        participant = await asyncio.wait_for(ctx.wait_for_participant(), JOIN_TIMEOUT_S)
    except TimeoutError:
        # The browser never came (a closed tab, a deleted room): free the slot. An
        # agent waiting alone keeps the room alive, so nothing else would end it.
        log.warning("no participant joined within %.0f s; leaving the room", JOIN_TIMEOUT_S)
        ctx.shutdown(reason="no participant joined")
        return
    try:
        owner_id = await _room_owner(connect, ctx.room.name)
    except (psycopg.OperationalError, OSError, DataError) as exc:
        owner_id = None
        log.warning("could not look up the room's owner (%s)", type(exc).__name__)
    if owner_id is None or participant.identity != str(owner_id):
        # Only the user the web app opened the room for is recorded (dashboards/rooms.py).
        log.warning("the participant is not the user this room was opened for; leaving the room")
        ctx.shutdown(reason="participant is not the room's owner")
        return

    slug, pipeline = _room_options(
        ctx.room.metadata,
        default_prompt=os.environ.get("WORKBENCH_AGENT_PROMPT", "voice-assistant"),
    )
    sequential = pipeline == "sequential"
    prompt: SessionPrompt | None = None
    user_settings: dict[str, Any] = {}
    instructions = FALLBACK_SYSTEM_PROMPT
    try:
        prompt, user_settings, instructions = await _session_prompt(connect, owner_id, slug)
    except (psycopg.OperationalError, OSError, DataError, KeyError) as exc:
        # The conversation goes on with the fallback prompt; it is still journaled.
        log.warning("no session prompt (%s); using the fallback instructions", type(exc).__name__)

    recorder = ConversationRecorder(
        ConversationInfo(
            conversation_id=uuid4(),
            owner_id=owner_id,
            room_name=ctx.room.name,
            prompt=prompt,
            model_specs={**models.snapshot, "pipeline": pipeline, "user_settings": user_settings},
        ),
        connect=connect,
        store=store,
        journal_dir=journal_dir,
    )
    await recorder.start()

    blocklist = [w for w in os.environ.get("WORKBENCH_AGENT_BLOCKLIST", "").split(",") if w.strip()]
    policy = ContentPolicy(blocklist=blocklist)
    # The user's language setting steers recognition; a requested stack other than
    # the one this worker runs is recorded (workers per stack are dispatched by name).
    stt_adapter = WorkbenchSTT(
        models.stt,
        # the naive pipeline transcribes only once the session's VAD has ended the speech
        vad=models.naive_vad if sequential else models.stt_vad,
        language=str(user_settings.get("language", "")).split("-")[0] or None,
    )
    tts_adapter = _CapturingTTS(models.tts)
    session: AgentSession[Any] = AgentSession(
        stt=stt_adapter,
        llm=WorkbenchLLM(models.llm),
        # the first clause is spoken as soon as it is complete (agent/text_chunks.py)
        tts=tts.StreamAdapter(tts=tts_adapter, sentence_tokenizer=FirstClauseTokenizer()),
        vad=models.naive_vad if sequential else models.vad,
        turn_handling=TurnHandlingOptions(
            # the local model (no cloud inference); the naive pipeline answers when VAD says
            # the speech ended, with no extra wait
            turn_detection="vad" if sequential else TurnDetector(version="v1-mini"),
            # piper renders a clause in ~0.05 s, so the preemptive reply is voiced too
            preemptive_generation={
                "enabled": PREEMPTIVE and not sequential,
                "preemptive_tts": True,
            },
            endpointing={"min_delay": 0.0 if sequential else MIN_ENDPOINT_S},
        ),
    )
    pending: set[asyncio.Task[None]] = set()
    false_interruptions: list[float] = []

    @session.on("agent_false_interruption")
    def _on_false_interruption(event: Any) -> None:
        # The agent stopped for what was not a real interruption (and resumed).
        false_interruptions.append(event.created_at)

    async def record(item: llm.ChatMessage) -> None:
        metrics: dict[str, Any] = dict(item.metrics)
        now = time.time()
        started = _timestamp(metrics.get("started_speaking_at"), item.created_at)
        ended = max(started, _timestamp(metrics.get("stopped_speaking_at"), now))
        text = item.text_content or ""
        pcm, rate = None, 0
        common = {
            "conversation_id": recorder.info.conversation_id,
            "idx": recorder.next_index(),
            "text": text,
            "started_at": started,
            "ended_at": ended,
        }
        if item.role == "user":
            draft = TurnDraft(
                **common,
                role="user",
                eou_delay_s=metrics.get("end_of_turn_delay"),
                stt_s=metrics.get("transcription_delay"),
                filter_verdict=item.extra.get("filter_verdict") or policy.check(text),
            )
            heard = stt_adapter.take_audio()
            if heard is not None:
                pcm, rate = heard
        else:
            draft = TurnDraft(
                **common,
                role="agent",
                llm_ttft_s=metrics.get("llm_node_ttft"),
                tts_ttfb_s=metrics.get("tts_node_ttfb"),
                v2v_s=metrics.get("e2e_latency"),
                interrupted=bool(item.interrupted),
                false_interruption=bool(false_interruptions),  # since the previous agent turn
                filter_verdict=policy.check(text),
            )
            pcm, rate = tts_adapter.take(), tts_adapter.sample_rate
            false_interruptions.clear()
        await recorder.add_turn(draft, pcm=pcm, sample_rate_hz=rate)

    @session.on("conversation_item_added")
    def _on_item(event: Any) -> None:
        item = event.item
        if isinstance(item, llm.ChatMessage) and item.role in ("user", "assistant"):
            task = asyncio.create_task(record(item))
            pending.add(task)
            task.add_done_callback(pending.discard)

    finished = asyncio.Event()

    async def finish(reason: str = "") -> None:
        if finished.is_set():
            return
        finished.set()
        turns_in_flight = [t for t in pending if t is not asyncio.current_task()]
        if turns_in_flight:
            await asyncio.gather(*turns_in_flight, return_exceptions=True)
        await recorder.end("completed")
        await recorder.aclose()

    @session.on("close")
    def _on_close(event: Any) -> None:
        # The user left (or the session failed): close the conversation, then the job.
        async def close() -> None:
            await finish()
            ctx.shutdown(reason="session closed")

        closing.add(asyncio.create_task(close()))

    closing: set[asyncio.Task[None]] = set()  # keeps the task referenced until done
    ctx.add_shutdown_callback(finish)
    await session.start(
        agent=PIPELINES[pipeline](instructions=instructions, policy=policy),
        room=ctx.room,
        room_options=room_io.RoomOptions(
            text_output=room_io.TextOutputOptions(sync_transcription=SYNC_CAPTIONS)
        ),
    )
    greeting = os.environ.get("WORKBENCH_AGENT_GREETING", "Hello! How can I help you today?")
    if greeting:
        session.say(greeting)


# How often the worker stores journals of jobs that crashed while it lives on.
RECOVERY_INTERVAL_S = 30.0


async def recover(settings_dir: Path | None = None) -> int:
    """Store journals a crashed worker left behind, closing their conversations as interrupted."""
    settings = get_settings()
    connect = _connector(database_url(settings))
    assert settings.storage_url is not None
    return await recover_journals(
        settings_dir or settings.local_dir / "agent-journal",
        connect=connect,
        store=ObjectStore(settings.storage_url),
        live=set(),
    )


def start_recovery_thread() -> threading.Event:
    """Recover crashed jobs' journals in the background while the worker runs; set the event to stop."""
    settings = get_settings()
    assert settings.storage_url is not None
    stop = threading.Event()
    threading.Thread(
        target=keep_recovering,
        args=(settings.local_dir / "agent-journal",),
        kwargs={
            "connect": _connector(database_url(settings)),
            "store": ObjectStore(settings.storage_url),
            "interval_s": RECOVERY_INTERVAL_S,
            "stop": stop,
        },
        name="journal-recovery",
        daemon=True,
    ).start()
    return stop

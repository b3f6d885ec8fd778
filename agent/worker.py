"""The LiveKit agent worker: models chosen by a stack spec, every turn recorded with its latency.

Run with `python -m agent` (the stack's `up` does). Where it runs (stack file,
port, LiveKit name) comes from `workbench.config.Settings`; the conversation's
knobs (default prompt, greeting, blocklist, VAD and endpointing) from
`agent.settings.AgentSettings`; each finished message becomes a turn row in
`agent.turn_records`.

A participant's identity is their Supabase user id (the Panel server issues
their LiveKit token), and the agent records only the user the web app opened the
room for, presenting that room's key (`workbench.rooms.open_room`); room metadata may name another prompt, `{"prompt": "slug"}`,
and the pipeline, `{"pipeline": "sequential"}` (see `SequentialAgent`; default
"streaming").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import AsyncIterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
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
    JobRequest,
    ModelSettings,
    TurnHandlingOptions,
    llm,
    room_io,
    tts,
)
from livekit.agents.telemetry.http_server import metrics as all_metrics
from livekit.agents.types import FlushSentinel
from livekit.plugins import silero
from psycopg_pool import AsyncConnectionPool

from agent.adapters import PhraseCache, WorkbenchLLM, WorkbenchSTT, WorkbenchTTS
from agent.heartbeat import Heartbeat
from agent.metrics import JOB_FAILURES, observe_turn
from agent.model_health import ModelHealth
from agent.recorder import (
    ConversationInfo,
    ConversationRecorder,
    keep_recovering,
    recover_journals,
)
from agent.settings import AgentSettings, agent_settings
from agent.text_chunks import FirstClauseTokenizer
from agent.turn_detection import LatestFinal, TranscriptAwareTurnDetector
from agent.turn_records import turn_draft
from workbench.audio import SPEECH_RATE_HZ, resample, to_float32
from workbench.config import Settings, get_settings
from workbench.content_filter import ContentPolicy
from workbench.db.connection import (
    Connect,
    database_url,
    fresh_connections,
    open_pool,
    pooled_connections,
    service_session,
)
from workbench.db.errors import DataError
from workbench.db.models import SessionPrompt
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
from workbench.room_options import ROOM_KEY_ATTRIBUTE, RoomOptions, room_key_matches
from workbench.storage import open_store

log = logging.getLogger("workbench.agent")


@dataclass
class _Models:
    stt: SpeechToText
    llm: ChatModel
    tts: TextToSpeech
    vad: Any  # the streaming session's: a pause of vad_silence_s asks the turn detector
    stt_vad: Any  # the STT stream's: cuts at the first short pause to transcribe early
    naive_vad: Any  # the sequential pipeline's: ends speech after naive_silence_s, no turn model
    snapshot: dict[str, Any]
    # Shared by every conversation of this process: the greeting, rendered at prewarm,
    # and notices are synthesised once, not at the start of every room.
    phrases: PhraseCache = field(default_factory=PhraseCache)


# The one stack this worker runs (WORKBENCH_AGENT_STACK); it registers under the stack's
# agent name, so the web app dispatches to it only the rooms opened on this stack.
STACK = load_stack(get_settings().agent_stack)


def prewarm(proc: JobProcess) -> None:
    """Load the stack's models once per worker process."""
    knobs = agent_settings()
    stack = STACK
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
        vad=silero.VAD.load(min_silence_duration=knobs.vad_silence_s),
        stt_vad=silero.VAD.load(min_silence_duration=knobs.early_silence_s),
        naive_vad=silero.VAD.load(min_silence_duration=knobs.naive_silence_s),
        snapshot=stack.snapshot(),
    )
    seconds = warm_up_turn(models, greeting=knobs.greeting)
    proc.userdata["models"] = models
    log.info(
        "models loaded and answered a warm-up turn in %.2f s", seconds, extra={"stack": stack.name}
    )


def warm_up_turn(models: _Models, *, greeting: str = "") -> float:
    """One turn through the stack (TTS -> STT -> LLM), so a process is ready only if it can answer.

    A native crash or a broken model shows here, in prewarm, where the worker
    counts it, instead of in the first room. The greeting is rendered into the
    shared phrase cache, so no room waits for it. Returns the seconds it took.
    """

    async def turn() -> str:
        if greeting:
            await WorkbenchTTS(models.tts, cache=models.phrases).render(greeting)
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

    def __init__(self, model: TextToSpeech, *, cache: PhraseCache, voice: str | None) -> None:
        super().__init__(model, cache=cache, voice=voice)
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


def _room_options(metadata: str | None, *, default_prompt: str) -> tuple[str, str, int | None]:
    """The prompt slug, pipeline and pinned prompt version a room's metadata asks for
    (defaults when absent or unreadable)."""
    options = RoomOptions.from_metadata(metadata)
    slug = options.prompt or default_prompt
    pipeline = options.pipeline or "streaming"
    if pipeline not in PIPELINES:
        log.warning("unknown pipeline %r in room metadata; using streaming", pipeline)
        pipeline = "streaming"
    return slug, pipeline, options.prompt_version


APPLICATION_NAME = "voice-workbench-agent"  # as pg_stat_activity shows the agent


def _connector(settings: Settings) -> Connect:
    """Fresh connections for the worker's own rare work (heartbeat, journal recovery), each
    on an event loop of its own."""
    return fresh_connections(database_url(settings), name=APPLICATION_NAME)


async def _conversation_pool(settings: Settings) -> AsyncConnectionPool:
    """The conversation's connections: a small pool like the web app's (the job closes it).

    A conversation writes every turn; a connection each time would pay a connect (on
    hosted Supabase a TLS handshake to its pooler) per write. Opened without waiting:
    with the database away the conversation goes on journaling, and each write fails
    after a short wait as a failed connect would.
    """
    pool = open_pool(settings, min_size=1, max_size=2, name=APPLICATION_NAME)
    await pool.open(wait=False)
    return pool


async def _room_admission(connect: Connect, room: str) -> tuple[UUID, bytes | None] | None:
    """Whom the web app opened `room` for and its room key's digest (private.rooms), if it did."""
    async with connect() as conn, service_session(conn):
        return await RoomsRepo(conn).admission(room)


async def _session_prompt(
    connect: Connect, owner_id: UUID, slug: str, pinned: int | None = None
) -> tuple[SessionPrompt | None, dict[str, Any], str]:
    """The prompt version this user gets (experiment arm or active), their settings and the instructions.

    `pinned`: the version the room asks for, which a researcher's or admin's room
    gets (a simulation of a draft); anyone else's gets the usual version. Without
    the database (or the prompt) the conversation goes on with the fallback
    instructions; it is journaled all the same.
    """
    try:
        async with connect() as conn, service_session(conn, acting_for=owner_id):
            profile = await ProfilesRepo(conn).get(owner_id)
            prompts = PromptsRepo(conn)
            prompt = await prompts.pinned(slug, pinned) if pinned else None
            if pinned and prompt is None:
                log.warning(
                    "version %s of %r is not this room's to pin; using the usual", pinned, slug
                )
            if prompt is None:
                prompt = await prompts.for_session(slug, user_id=owner_id, role=profile.role)
    except (psycopg.OperationalError, OSError, DataError, KeyError) as exc:
        log.warning("no session prompt (%s); using the fallback instructions", type(exc).__name__)
        return None, {}, FALLBACK_SYSTEM_PROMPT
    values = {name: profile.display_name for name in prompt.version.variables}
    return prompt, profile.settings, prompt.version.render(values)


def job_load(worker: AgentServer) -> float:
    """Load as the share of room slots in use.

    The default (CPU utilisation) crosses its threshold on a 2-core machine
    whenever a job process loads its models, and LiveKit does not retry a room
    it could not dispatch; counting rooms is steady. `bench/` measures how many
    rooms a worker sustains, which is where `max_jobs` comes from.
    """
    return len(worker.active_jobs) / agent_settings().max_jobs


class SlotCountingServer(AgentServer):
    """An AgentServer that counts room slots and knows whether its models load.

    Slots: livekit-agents estimates a job accepted but not started yet as
    load_threshold / num_idle_processes while no job runs (0.99 here), so an idle
    worker refused the second of two rooms created at the same moment, and the
    LiveKit server does not retry: that room never got an agent (seen in bench/
    with two and three rooms at once). Counted in slots, as `job_load` counts
    running jobs, the worker takes `max_jobs` rooms however they arrive.

    Models: `model_health` watches the job processes (see agent/model_health.py)
    and serves `/models`; after repeated failures the worker shuts down.
    """

    def __init__(self, **kwargs: Any) -> None:
        # Set first: __setattr__ below uses it while the base class builds itself.
        self.model_health = ModelHealth(
            status_file=agent_settings().status_file,
            on_give_up=self._give_up,
            on_failure=lambda: JOB_FAILURES.labels(STACK.name).inc(),
        )
        super().__init__(**kwargs)
        self.on("worker_registered", lambda *_: self.model_health.worker_registered())

    def __setattr__(self, name: str, value: Any) -> None:
        # livekit-agents builds its HTTP server and process pool inside run() and
        # starts them at once, with no hook between: attach the model-health route
        # and listeners as they are assigned, which is before they start.
        if name == "_http_server" and value is not None:
            # /metrics: livekit-agents' and ours, from every process of the worker
            # (prometheus multiprocess mode, agent/metrics.py)
            value.app.add_routes(
                [web.get("/models", self.model_health.handle), web.get("/metrics", all_metrics)]
            )
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
        return float(self._worker_load) + self._reserved_slots / agent_settings().max_jobs


_stopping: list[asyncio.Task[None]] = []  # keeps the give-up task referenced


server = SlotCountingServer(
    setup_fnc=prewarm,
    load_fnc=job_load,
    load_threshold=0.99,
    initialize_process_timeout=180,  # the first load may convert a checkpoint
    num_idle_processes=1,
    job_memory_warn_mb=3000,  # the small CPU stack holds ~1.2 GB per process
    host="127.0.0.1",
    port=get_settings().agent_port,
)


class _ConversationLog:
    """Feeds the recorder from the session's events: each finished message becomes a turn, in order."""

    def __init__(
        self,
        recorder: ConversationRecorder,
        policy: ContentPolicy,
        stt: WorkbenchSTT,
        tts: _CapturingTTS,
    ) -> None:
        self.recorder, self.policy, self.stt, self.tts = recorder, policy, stt, tts
        self._pending: set[asyncio.Task[None]] = set()  # keeps the tasks referenced until done
        self._false_interruptions = 0  # since the previous agent turn
        self._agent_turns = 0  # so far: the next agent turn's ordinal
        self._finishing: asyncio.Future[None] | None = None
        self._closing: asyncio.Task[None] | None = None  # referenced until done

    def attach(self, session: AgentSession[Any], ctx: JobContext) -> None:
        """Record what `session` says and hears; close the conversation, then the job, when it ends."""

        @session.on("agent_false_interruption")
        def _on_false_interruption(_event: Any) -> None:
            self._false_interruptions += 1  # the agent stopped for what was not one, and resumed

        @session.on("conversation_item_added")
        def _on_item(event: Any) -> None:
            item = event.item
            if isinstance(item, llm.ChatMessage) and item.role in ("user", "assistant"):
                self._track(self._record(item))

        @session.on("close")
        def _on_close(_event: Any) -> None:
            # The user left (or the session failed): close the conversation, then the job.
            async def close() -> None:
                await self.finish()
                ctx.shutdown(reason="session closed")

            # Not among the turns in flight: finish() waits for those, and this waits for it.
            self._closing = asyncio.create_task(close())

        ctx.add_shutdown_callback(self.finish)

    def _track(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _record(self, item: llm.ChatMessage) -> None:
        ordinal = None
        if item.role == "assistant":
            ordinal, self._agent_turns = self._agent_turns, self._agent_turns + 1
        draft = turn_draft(
            item,
            conversation_id=self.recorder.info.conversation_id,
            idx=self.recorder.next_index(),
            policy=self.policy,
            false_interruption=bool(self._false_interruptions),
            now=time.time(),
            agent_ordinal=ordinal,
        )
        observe_turn(STACK.name, draft.role, draft.model_dump())
        pcm, rate = None, 0
        if draft.role == "user":
            heard = self.stt.take_audio()
            if heard is not None:
                pcm, rate = heard
        else:
            pcm, rate = self.tts.take(), self.tts.sample_rate
            self._false_interruptions = 0
        await self.recorder.add_turn(draft, pcm=pcm, sample_rate_hz=rate)

    async def finish(self, _reason: str = "") -> None:
        """Wait for the turns in flight, then end the conversation (once; every caller
        returns when it has ended, so what closes after it can rely on that)."""
        if self._finishing is None:
            self._finishing = asyncio.ensure_future(self._end(list(self._pending)))
        await asyncio.shield(self._finishing)

    async def _end(self, in_flight: list[asyncio.Task[Any]]) -> None:
        await asyncio.gather(*in_flight, return_exceptions=True)
        await self.recorder.end("completed")
        await self.recorder.aclose()


async def _admitted_owner(ctx: JobContext, connect: Connect, join_timeout_s: float) -> UUID | None:
    """The room's owner once they joined; None (the job ends) for no one or anyone else."""
    try:
        participant = await asyncio.wait_for(ctx.wait_for_participant(), join_timeout_s)
    except TimeoutError:
        # The browser never came (a closed tab, a deleted room): free the slot. An
        # agent waiting alone keeps the room alive, so nothing else would end it.
        log.warning("no participant joined within %.0f s; leaving the room", join_timeout_s)
        ctx.shutdown(reason="no participant joined")
        return None
    try:
        admission = await _room_admission(connect, ctx.room.name)
    except (psycopg.OperationalError, OSError, DataError) as exc:
        admission = None
        log.warning("could not look up the room's owner (%s)", type(exc).__name__)
    owner_id, key_digest = admission or (None, None)
    presented = participant.attributes.get(ROOM_KEY_ATTRIBUTE)
    if (
        owner_id is None
        or participant.identity != str(owner_id)
        or not room_key_matches(presented, key_digest)
    ):
        # Only the user the web app opened the room for is recorded, with the room's key
        # from their token (workbench/rooms.py): an identity alone can be minted.
        log.warning("the participant is not the user this room was opened for; leaving the room")
        ctx.shutdown(reason="participant is not the room's owner")
        return None
    return owner_id


def chosen_voice(model: TextToSpeech, wanted: object) -> str:
    """The user's voice setting if the stack's TTS speaks it, else its default voice."""
    voices = model.voices
    if wanted and wanted in voices:
        return str(wanted)
    if wanted:
        log.info("voice %r is not one of this stack's (%s); using %s", wanted, voices, voices[0])
    return voices[0]


def _voice_session(
    models: _Models,
    knobs: AgentSettings,
    *,
    sequential: bool,
    language: str | None,
    voice: str,
) -> tuple[AgentSession[Any], WorkbenchSTT, _CapturingTTS]:
    """The session for one pipeline, with the adapters the recorder takes audio from."""
    latest = LatestFinal()  # the STT writes it, the turn detector reads it
    stt_adapter = WorkbenchSTT(
        models.stt,
        # the naive pipeline transcribes only once the session's VAD has ended the speech
        vad=models.naive_vad if sequential else models.stt_vad,
        language=language,
        latest=latest,
        max_utterance_s=knobs.max_utterance_s,
    )
    tts_adapter = _CapturingTTS(models.tts, cache=models.phrases, voice=voice)
    session: AgentSession[Any] = AgentSession(
        stt=stt_adapter,
        llm=WorkbenchLLM(models.llm),
        # the first clause is spoken as soon as it is complete (agent/text_chunks.py)
        tts=tts.StreamAdapter(tts=tts_adapter, sentence_tokenizer=FirstClauseTokenizer()),
        vad=models.naive_vad if sequential else models.vad,
        turn_handling=TurnHandlingOptions(
            # the local model (no cloud inference); the naive pipeline answers when VAD says
            # the speech ended, with no extra wait
            turn_detection="vad"
            if sequential
            else TranscriptAwareTurnDetector(
                latest if knobs.finished_text else None, threshold=knobs.turn_threshold
            ),
            # piper renders a clause in ~0.05 s, so the preemptive reply is voiced too
            preemptive_generation={
                "enabled": knobs.preemptive and not sequential,
                "preemptive_tts": True,
            },
            endpointing={
                "min_delay": 0.0 if sequential else knobs.min_endpoint_s,
                "max_delay": knobs.max_endpoint_s,
            },
        ),
    )
    return session, stt_adapter, tts_adapter


async def claim_room(request: JobRequest) -> None:
    """Accept a room's job only if no other job holds the room (one agent per room).

    The web app dispatches a room again when no worker has claimed it
    (`workbench.rooms.wait_for_agent`); a job for a room another job holds is
    rejected. A room the web app did not open here is accepted: the entry point
    then admits no one and leaves. Without the database the job is accepted
    (a second agent is the lesser harm than none).
    """
    try:
        async with _connector(get_settings())() as conn, service_session(conn):
            claimed = await RoomsRepo(conn).claim(request.room.name, request.id)
    except (psycopg.OperationalError, OSError, DataError) as exc:
        log.warning("could not claim room %s (%s); accepting", request.room.name, exc)
        claimed = True
    if claimed is False:
        log.info("room %s already has its agent; rejecting job %s", request.room.name, request.id)
        await request.reject()
        return
    await request.accept()


# Registered under its stack's name, so LiveKit dispatches only the rooms the web app
# opened on this stack (workbench/rooms.py), and the web app can ask again when no
# worker was free.
@server.rtc_session(agent_name=get_settings().agent_name_for(STACK.name), on_request=claim_room)
async def entrypoint(ctx: JobContext) -> None:
    """One room: admit its owner, load their prompt, run the session, record every turn."""
    settings, knobs = get_settings(), agent_settings()
    models: _Models = ctx.proc.userdata["models"]
    pool = await _conversation_pool(settings)
    connect = pooled_connections(pool)
    await ctx.connect(auto_subscribe=AutoSubscribe.AUDIO_ONLY)
    owner_id = await _admitted_owner(ctx, connect, knobs.join_timeout_s)
    if owner_id is None:
        await pool.close()
        return
    slug, pipeline, pinned = _room_options(ctx.room.metadata, default_prompt=knobs.prompt)
    prompt, user_settings, instructions = await _session_prompt(connect, owner_id, slug, pinned)
    voice = chosen_voice(models.tts, user_settings.get("voice"))
    recorder = ConversationRecorder(
        ConversationInfo(
            conversation_id=uuid4(),
            owner_id=owner_id,
            room_name=ctx.room.name,
            prompt=prompt,
            model_specs={
                **models.snapshot,
                "pipeline": pipeline,
                "voice": voice,
                "user_settings": user_settings,
            },
        ),
        connect=connect,
        store=open_store(settings),
        journal_dir=settings.local_dir / "agent-journal",
        max_audio_s=knobs.max_turn_audio_s,
    )
    await recorder.start()
    policy = ContentPolicy(blocklist=knobs.blocked_words)
    session, stt_adapter, tts_adapter = _voice_session(
        models,
        knobs,
        sequential=pipeline == "sequential",
        # the user's language setting steers recognition
        language=str(user_settings.get("language", "")).split("-")[0] or None,
        voice=voice,  # and their voice setting, when the stack speaks it
    )
    conversation_log = _ConversationLog(recorder, policy, stt_adapter, tts_adapter)
    conversation_log.attach(session, ctx)

    async def close_database() -> None:
        # Shutdown callbacks run at once: the pool outlives the conversation's last writes.
        await conversation_log.finish()
        await pool.close()

    ctx.add_shutdown_callback(close_database)
    await session.start(
        agent=PIPELINES[pipeline](instructions=instructions, policy=policy),
        room=ctx.room,
        room_options=room_io.RoomOptions(
            text_output=room_io.TextOutputOptions(sync_transcription=knobs.sync_captions)
        ),
    )
    if knobs.greeting:
        session.say(knobs.greeting)
    time_limit = asyncio.create_task(_end_at_time_limit(session, ctx, knobs.max_conversation_s))

    async def stop_the_clock() -> None:
        time_limit.cancel()

    ctx.add_shutdown_callback(stop_the_clock)


def time_limit_words(limit_s: float) -> str:
    """What the agent says when a conversation reaches its time limit."""
    minutes = limit_s / 60
    amount = f"{minutes:.0f} minutes" if minutes >= 2 else f"{limit_s:.0f} seconds"
    return f"This conversation has reached its time limit of {amount}. Goodbye!"


async def _end_at_time_limit(session: AgentSession[Any], ctx: JobContext, limit_s: float) -> None:
    """After `limit_s`, tell the user, let the words play out, then leave the room."""
    await asyncio.sleep(limit_s)
    log.info("the conversation reached its time limit (%.0f s); ending it", limit_s)
    with contextlib.suppress(Exception):  # a session already closing: leave all the same
        handle = session.say(time_limit_words(limit_s), allow_interruptions=False)
        await asyncio.wait_for(handle.wait_for_playout(), timeout=30)
    ctx.shutdown(reason="the conversation reached its time limit")


# How often the worker stores journals of jobs that crashed while it lives on.
RECOVERY_INTERVAL_S = 30.0


async def recover(settings_dir: Path | None = None) -> int:
    """Store journals a crashed worker left behind, closing their conversations as interrupted."""
    settings = get_settings()
    connect = _connector(settings)
    return await recover_journals(
        settings_dir or settings.local_dir / "agent-journal",
        connect=connect,
        store=open_store(settings),
        live=set(),
    )


def start_heartbeat() -> Heartbeat:
    """Announce this worker in the database every few seconds (agent/heartbeat.py)."""
    settings = get_settings()
    heartbeat = Heartbeat(
        connect=_connector(settings),
        stack=STACK,
        agent_name=settings.agent_name_for(STACK.name),
        health=server.model_health,
        rooms=lambda: len(server.active_jobs),
        max_rooms=agent_settings().max_jobs,
    )
    heartbeat.start()
    return heartbeat


def start_recovery_thread() -> threading.Event:
    """Recover crashed jobs' journals in the background while the worker runs; set the event to stop."""
    settings = get_settings()
    stop = threading.Event()
    threading.Thread(
        target=keep_recovering,
        args=(settings.local_dir / "agent-journal",),
        kwargs={
            "connect": _connector(settings),
            "store": open_store(settings),
            "interval_s": RECOVERY_INTERVAL_S,
            "stop": stop,
        },
        name="journal-recovery",
        daemon=True,
    ).start()
    return stop

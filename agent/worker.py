"""The LiveKit agent worker: models chosen by a stack spec, every turn recorded with its latency.

Run with `python -m agent` (the stack's `up` does). Where it runs (stack file,
port, LiveKit name) comes from `workbench.config.Settings`; the conversation's
knobs (default prompt, greeting, blocklist, VAD and endpointing) from
`agent.settings.AgentSettings`. This module keeps what livekit-agents' CLI finds
(the `server` and its entry point) and the process's prewarm; the server's
livekit-private hooks are in `agent/server.py`, the pipelines in
`agent/pipelines.py`, a conversation's admission, prompt and recording in
`agent/conversation.py`.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from livekit.agents import AutoSubscribe, JobContext, JobProcess, room_io
from livekit.plugins import silero

from agent.conversation import (
    ConversationLog,
    SessionSetup,
    admitted_owner,
    claim_room,
    conversation_pool,
    keep_time_limit,
    room_choices,
    session_prompt,
    start_recorder,
    worker_connections,
)
from agent.heartbeat import Heartbeat
from agent.pipelines import PIPELINES, WorkerModels, chosen_voice, voice_session, warm_up_turn
from agent.recorder import keep_recovering
from agent.server import SlotCountingServer, job_load
from agent.settings import agent_settings
from workbench.config import get_settings
from workbench.content_filter import ContentPolicy
from workbench.db.connection import pooled_connections
from workbench.db.models import primary_language
from workbench.models.stack import load_stack, load_stack_models
from workbench.storage import open_store

log = logging.getLogger("workbench.agent")

# The one stack this worker runs (WORKBENCH_AGENT_STACK); it registers under the stack's
# agent name, so the web app dispatches to it only the rooms opened on this stack.
STACK = load_stack(get_settings().agent_stack)


def prewarm(proc: JobProcess) -> None:
    """Load the stack's models once per worker process."""
    knobs = agent_settings()
    stack = STACK
    loaded = load_stack_models(stack)
    models = WorkerModels(
        stt=loaded.stt,
        llm=loaded.llm,
        tts=loaded.tts,
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


server = SlotCountingServer(
    stack_name=STACK.name,
    setup_fnc=prewarm,
    load_fnc=job_load,
    load_threshold=0.99,
    initialize_process_timeout=180,  # the first load may convert a checkpoint
    num_idle_processes=1,
    job_memory_warn_mb=3000,  # the small CPU stack holds ~1.2 GB per process
    host="127.0.0.1",
    port=get_settings().agent_port,
)


# Registered under its stack's name, so LiveKit dispatches only the rooms the web app
# opened on this stack (workbench/rooms.py), and the web app can ask again when no
# worker was free.
@server.rtc_session(agent_name=get_settings().agent_name_for(STACK.name), on_request=claim_room)
async def entrypoint(ctx: JobContext) -> None:
    """One room: admit its owner, load their prompt, run the session, record every turn."""
    settings, knobs = get_settings(), agent_settings()
    models: WorkerModels = ctx.proc.userdata["models"]
    pool = await conversation_pool(settings)
    connect = pooled_connections(pool)
    await ctx.connect(auto_subscribe=AutoSubscribe.AUDIO_ONLY)
    owner_id = await admitted_owner(ctx, connect, knobs.join_timeout_s)
    if owner_id is None:
        await pool.close()
        return
    choices = room_choices(ctx.room.metadata, default_prompt=knobs.prompt)
    pipeline = choices.pipeline
    setup = await session_prompt(connect, owner_id, choices.slug, choices.pinned, choices.variables)
    user_settings = setup.user_settings
    voice = chosen_voice(models.tts, user_settings.get("voice"))
    recorder = await start_recorder(
        settings,
        connect,
        owner_id=owner_id,
        room_name=ctx.room.name,
        prompt=setup.prompt,
        model_specs=recorded_specs(models, pipeline=pipeline, voice=voice, setup=setup),
    )
    policy = ContentPolicy(blocklist=knobs.blocked_words)
    session, stt_adapter, tts_adapter = voice_session(
        models,
        knobs,
        sequential=pipeline == "sequential",
        # the user's language setting steers recognition
        language=primary_language(user_settings.get("language")),
        voice=voice,  # and their voice setting, when the stack speaks it
    )
    conversation_log = ConversationLog(
        recorder, stack_name=STACK.name, policy=policy, stt=stt_adapter, tts=tts_adapter
    )
    conversation_log.attach(session, ctx)

    async def close_database() -> None:
        # Shutdown callbacks run at once: the pool outlives the conversation's last writes.
        await conversation_log.finish()
        await pool.close()

    ctx.add_shutdown_callback(close_database)
    await session.start(
        agent=PIPELINES[pipeline](instructions=setup.instructions, policy=policy),
        room=ctx.room,
        room_options=room_io.RoomOptions(
            text_output=room_io.TextOutputOptions(sync_transcription=knobs.sync_captions)
        ),
    )
    if knobs.greeting:
        session.say(knobs.greeting)
    keep_time_limit(session, ctx, knobs.max_conversation_s)


def recorded_specs(
    models: WorkerModels, *, pipeline: str, voice: str, setup: SessionSetup
) -> dict[str, Any]:
    """What a conversation records of how it ran: the stack's specs and the session's choices."""
    return {
        **models.snapshot,
        "pipeline": pipeline,
        "voice": voice,
        "user_settings": setup.user_settings,
        "prompt_variables": setup.variables,
    }


# How often the worker stores journals of jobs that crashed while it lives on.
RECOVERY_INTERVAL_S = 30.0


def start_heartbeat() -> Heartbeat:
    """Announce this worker in the database every few seconds (agent/heartbeat.py)."""
    settings = get_settings()
    heartbeat = Heartbeat(
        connect=worker_connections(settings),
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
        args=(settings.journal_dir,),
        kwargs={
            "connect": worker_connections(settings),
            "store": open_store(settings),
            "interval_s": RECOVERY_INTERVAL_S,
            "stop": stop,
        },
        name="journal-recovery",
        daemon=True,
    ).start()
    return stop

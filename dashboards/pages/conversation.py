"""Conversation: talk to the agent through the browser microphone.

Start opens a fresh LiveKit room for this user (the agent is dispatched to it
and records every turn); the page shows both sides' transcript live, the agent's
state and the connection statistics. Researchers and admins may pick which
system prompt the agent uses and which model stack runs it (a stack with no
ready worker is shown as unavailable); everyone else gets the active prompt on
the default stack.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import panel as pn
import param

from dashboards.components.actions import run_on_click
from dashboards.components.voice_room import VoiceRoom
from dashboards.context import web_context
from dashboards.metrics import ROOMS_QUEUED
from dashboards.session import PageSession
from dashboards.text import markdown_text
from workbench.config import Settings
from workbench.db.connection import Connect
from workbench.db.models import LiveStack, UiSettings, UserSettings, primary_language
from workbench.db.repositories import ConversationsRepo, ProfilesRepo, PromptsRepo, WorkersRepo
from workbench.models import tts_voices
from workbench.models.stack import known_stacks
from workbench.room_options import parse_variables
from workbench.rooms import StackUnavailable, open_room, unavailable_reason, wait_for_agent

DEFAULT_PROMPT = "(active prompt)"


class ConversationPage(pn.viewable.Viewer):
    """Start and stop a conversation; the live connection itself is the VoiceRoom component."""

    prompt = param.Selector(default=DEFAULT_PROMPT, objects=[DEFAULT_PROMPT], doc="prompt slug")
    can_choose_prompt = param.Boolean(default=False, doc="researchers and admins may pick")
    stack = param.Selector(default="", objects=[""], doc="the model stack to start on")
    variables = param.String(default="", doc="name=value lines for the prompt's {{variables}}")
    stack_problem = param.String(default="", doc="why the chosen stack cannot serve now")
    room = param.String(default="", doc="the LiveKit room of the running conversation")
    error = param.String(default="", doc="why the last action failed")
    notice = param.String(default="", doc="what the conversation waits for (a free agent)")
    # The user's settings (Settings page) that act here.
    show_latency = param.Boolean(default=True, doc="voice to voice and connection figures")
    show_transcript = param.Boolean(default=True, doc="both sides' words as they come")
    settings_note = param.String(
        default="", doc="which language or voice setting the chosen stack cannot follow"
    )

    def __init__(self, session: PageSession, **params: Any) -> None:
        super().__init__(**params)
        self._session = session
        self.voice = VoiceRoom()
        self._heard_room = ""  # the room the browser's measurements belong to (kept after Stop)
        self._reported: set[int] = set()
        self._waiting: asyncio.Task[None] | None = None
        self._live: dict[str, LiveStack] = {}  # stacks with a fresh worker heartbeat
        self._settings = UserSettings()  # the user's (language and voice act per stack)
        # Heard latency is retried as the transcript and the 2-second statistics update,
        # and once more on Stop: the agent may not have written the conversation row when
        # the browser measures. A statistics update is also a connection sample.
        self.voice.param.watch(self._measured, ["heard", "transcript", "stats"])

    async def load(self) -> None:
        """Which prompts and stacks this user may choose from, and the settings that shape the page."""
        config = web_context().settings
        async with self._session.as_user() as conn:
            profiles = ProfilesRepo(conn)
            self.can_choose_prompt = await profiles.is_researcher()
            if self.can_choose_prompt:
                slugs = sorted(p.slug for p in await PromptsRepo(conn).all_prompts())
                self.param.prompt.objects = [DEFAULT_PROMPT, *slugs]
            settings = UserSettings.model_validate((await profiles.mine()).settings)
            self._live = await WorkersRepo(conn).live_stacks()
        ui = settings.ui or UiSettings()
        self.show_latency = ui.show_latency is not False
        self.show_transcript = ui.show_transcript is not False
        self._settings = settings
        names = [config.default_stack]
        if self.can_choose_prompt:  # the same role chooses the stack (checked again in SQL)
            names = list(dict.fromkeys([*config.stack_names, *self._live, *known_stacks()]))
        self._offer(names, settings.stack if settings.stack in names else config.default_stack)

    def _offer(self, names: list[str], chosen: str) -> None:
        """Offer `names` in the picker, labelled with their workers now, with `chosen` picked."""
        self.param.stack.objects = {stack_label(name, self._live.get(name)): name for name in names}
        self.stack = chosen
        self._stack_changed()

    @param.depends("stack", watch=True)
    def _stack_changed(self) -> None:
        live = self._live.get(self.stack)
        serving = live is not None and live.serving
        self.stack_problem = (
            "" if serving else unavailable_reason(self.stack, live.problems if live else None)
        )
        notes = (
            language_note(self._settings.language, live.language if live else None),
            voice_note(
                self._settings.voice, tts_voices(live.spec.get("tts") or {}) if live else []
            ),
        )
        self.settings_note = " ".join(note for note in notes if note)

    async def refresh_stacks(self) -> None:
        """Read which stacks can serve again (a worker started or stopped meanwhile)."""
        async with self._session.as_user() as conn:
            self._live = await WorkersRepo(conn).live_stacks()
        self._offer(list(self.param.stack.objects), self.stack)

    def _measured(self, *events: param.parameterized.Event) -> None:
        sample = any(event.name == "stats" for event in events)
        pn.state.execute(partial(self.report, connection_sample=sample))

    async def report(self, *, connection_sample: bool = False) -> None:
        """Store what the browser measured, in one session: voice to voice per agent reply
        (unreported entries are retried next call: a report is refused until the agent has
        written the conversation row) and, if asked, its latest connection statistics
        (dropped until then).
        """
        pending = [
            (int(entry["ordinal"]), float(entry["heard_s"]))
            for entry in (self.voice.heard if self._heard_room else [])
            if entry.get("heard_s") is not None and int(entry["ordinal"]) not in self._reported
        ]
        stats = dict(self.voice.stats) if connection_sample and self.room else {}
        if not pending and not stats:
            return
        async with self._session.as_user() as conn:
            repo = ConversationsRepo(conn)
            for ordinal, v2v in pending:
                if await repo.report_heard_latency(
                    room_name=self._heard_room, agent_ordinal=ordinal, v2v_audio_s=v2v
                ):
                    self._reported.add(ordinal)
            if stats:
                await repo.report_connection(room_name=self.room, stats=stats)

    async def start(self) -> None:
        """Open a room (its owner recorded with the server's rights) and let the browser join it."""
        context = web_context()
        slug = None if self.prompt == DEFAULT_PROMPT or not self.can_choose_prompt else self.prompt
        try:
            variables = parse_variables(self.variables) if self.can_choose_prompt else {}
        except ValueError as exc:
            self.error = f"Prompt variables: {exc}"
            return
        try:
            async with context.connection() as conn:
                ticket = await open_room(
                    context.settings,
                    conn,
                    user_id=self._session.user_id,
                    display_name=self._session.claims.email or "researcher",
                    prompt_slug=slug,
                    stack=self.stack if self.can_choose_prompt else None,
                    variables=variables,
                )
        except StackUnavailable as exc:  # its worker stopped since the page loaded
            await self.refresh_stacks()
            self.error = str(exc)
            return
        except Exception as exc:  # LiveKit down or misconfigured: say so on the page
            self.error = f"Could not open a room: {exc}"
            return
        self.error = ""
        self.room = ticket.room
        self._heard_room = ticket.room
        self._reported = set()
        self.voice.param.update(url=ticket.url, token=ticket.token, active=True)
        self._waiting = asyncio.create_task(
            self._queue_for_agent(context.settings, context.connection, ticket.room)
        )

    async def _queue_for_agent(self, settings: Settings, connect: Connect, room: str) -> None:
        counted = False  # in the queued-rooms gauge (dashboards/metrics.py)

        def queued(waited_s: float) -> None:
            nonlocal counted
            if not counted:
                ROOMS_QUEUED.inc()
                counted = True
            self.notice = (
                f"Every agent is busy: your conversation is queued ({waited_s:.0f} s so far) "
                "and starts as soon as one is free. Stay on this page."
            )

        try:
            await wait_for_agent(settings, room, connect=connect, on_wait=queued)
        except Exception as exc:  # LiveKit went away: the page says so, the room stays
            self.error = f"Could not find an agent for this conversation: {exc}"
        finally:
            if counted:
                ROOMS_QUEUED.dec()
            self.notice = ""

    def stop(self) -> None:
        """Leave the room (the agent ends and records the conversation)."""
        if self._waiting is not None:
            self._waiting.cancel()
        self.notice = ""
        self.voice.active = False
        self.room = ""
        pn.state.execute(self.report)

    def __panel__(self) -> pn.viewable.Viewable:
        return conversation_view(self)


def transcript_markdown(transcript: list[dict[str, Any]]) -> str:
    """Both sides' lines, oldest first; interim text in italics."""
    if not transcript:
        return "*The transcript appears here as you talk.*"
    lines = []
    for entry in transcript:
        who = "You" if entry.get("speaker") == "user" else "Agent"
        text = markdown_text(str(entry.get("text", "")).strip())
        lines.append(f"**{who}:** {text}" if entry.get("final") else f"**{who}:** *{text}*")
    return "\n\n".join(lines)


def stack_label(name: str, live: LiveStack | None) -> str:
    """How the stack picker names a stack: with its ready workers, or why it cannot serve."""
    if live is None:
        return f"{name} (unavailable: no worker running)"
    if not live.serving:
        return f"{name} (unavailable: models not ready)"
    memory = f", {live.worker_memory_mb / 1024:.1f} GB" if live.worker_memory_mb else ""
    return f"{name} ({live.workers} worker{'s' if live.workers != 1 else ''}{memory})"


def language_note(wanted: str | None, fixed: str | None) -> str:
    """What to tell a user whose language setting this stack cannot follow ("" if it can)."""
    if not wanted or not fixed or primary_language(wanted) == fixed:
        return ""
    return (
        f"This model stack recognises only '{fixed}' speech; your language setting "
        f"('{wanted}') is not used by it."
    )


def voice_note(wanted: str | None, voices: list[str]) -> str:
    """What to tell a user whose voice setting this stack does not speak ("" if it does)."""
    if not wanted or not voices or wanted in voices:
        return ""
    others = f" (it has {', '.join(voices)})" if len(voices) > 1 else ""
    return (
        f"This model stack does not speak your voice setting ('{wanted}'); it answers in "
        f"'{voices[0]}'{others}."
    )


# The agent's states as the page words them (livekit-agents' `lk.agent.state`, and "gone").
AGENT_STATES = {
    "initializing": "joining",
    "listening": "listening",
    "thinking": "thinking…",
    "speaking": "speaking",
    "gone": "left the conversation",
}
AGENT_GONE = (
    "The agent left the conversation: its worker stopped or failed. Every turn it finished "
    "is kept. Stop, then start a new conversation to get another agent."
)


def stats_markdown(
    stats: dict[str, Any],
    connection: str,
    agent_state: str,
    heard: list[dict[str, Any]] | None = None,
    *,
    show_latency: bool = True,
    microphone_on: bool | None = None,
) -> str:
    """Connection, agent state, the microphone and (unless the user hid them) the latency
    figures, in one line."""
    agent = AGENT_STATES.get(agent_state, agent_state) or "—"
    parts = [f"Connection: **{connection}**", f"Agent: **{agent}**"]
    if microphone_on is not None and connection == "connected":
        parts.append(f"Microphone: **{'on' if microphone_on else 'muted'}**")
    if not show_latency:
        return " · ".join(parts)
    measured = [h["heard_s"] for h in heard or [] if h.get("heard_s") is not None]
    if measured:
        parts.append(f"voice to voice {measured[-1]:.2f} s")
    if stats:
        parts += [
            f"RTT {stats.get('rtt_ms', '—')} ms",
            f"jitter {stats.get('jitter_ms', '—')} ms",
            f"lost {stats.get('packets_lost', '—')} / {stats.get('packets_sent', '—')} packets",
        ]
    return " · ".join(parts)


def conversation_view(page: ConversationPage) -> pn.viewable.Viewable:
    """The page body, wired to the page's actions."""
    voice = page.voice
    start_button = pn.widgets.Button(name="Start conversation", button_type="primary", width=200)
    stop_button = pn.widgets.Button(name="Stop", button_type="default", width=120, disabled=True)
    mute = pn.widgets.Toggle.from_param(voice.param.muted, name="Mute microphone", width=160)
    microphone = pn.widgets.Select(name="Microphone", width=260)
    speaker = pn.widgets.Select(name="Speaker", width=260)

    def devices(*_events: Any) -> None:
        # The browser's devices; "" is its default (the list fills once the microphone is allowed).
        for widget, listed, chosen in (
            (microphone, voice.microphones, voice.microphone),
            (speaker, voice.speakers, voice.speaker),
        ):
            options = {"(browser default)": ""}
            options.update({d["label"]: d["id"] for d in listed if d.get("id")})
            widget.param.update(options=options, value=chosen if chosen in options.values() else "")
            widget.visible = len(options) > 1

    voice.param.watch(devices, ["microphones", "speakers"])
    devices()
    microphone.link(voice, value="microphone")
    speaker.link(voice, value="speaker")
    prompt = pn.widgets.Select.from_param(page.param.prompt, name="System prompt", width=260)
    prompt.visible = page.can_choose_prompt
    stack = pn.widgets.Select.from_param(page.param.stack, name="Model stack", width=320)
    stack.visible = page.can_choose_prompt
    variables = pn.widgets.TextAreaInput.from_param(
        page.param.variables,
        name="Prompt variables (name=value per line)",
        placeholder="tone=formal",
        height=60,
        width=260,
    )
    variables.visible = page.can_choose_prompt

    def sync_buttons(*_events: Any) -> None:
        # Start waits for a stack that can serve; Stop is for a running conversation.
        start_button.disabled = voice.active or bool(page.stack_problem)
        stop_button.disabled = not voice.active
        stack.disabled = voice.active

    voice.param.watch(sync_buttons, "active")
    page.param.watch(sync_buttons, "stack_problem")
    sync_buttons()
    run_on_click(start_button, page.start)
    stop_button.on_click(lambda _e: page.stop())

    @pn.depends(voice.param.transcript)
    def transcript(lines: list[dict[str, Any]]) -> pn.viewable.Viewable:
        return pn.pane.Markdown(transcript_markdown(lines), name="transcript")

    @pn.depends(
        voice.param.stats,
        voice.param.connection,
        voice.param.agent_state,
        voice.param.heard,
        voice.param.microphone_on,
    )
    def status(
        stats: dict[str, Any],
        connection: str,
        agent_state: str,
        heard: list[dict[str, Any]],
        microphone_on: bool,
    ) -> pn.viewable.Viewable:
        line = stats_markdown(
            stats,
            connection,
            agent_state,
            heard,
            show_latency=page.show_latency,
            microphone_on=microphone_on,
        )
        return pn.pane.Markdown(line)

    @pn.depends(
        page.param.error,
        voice.param.error,
        page.param.notice,
        page.param.stack_problem,
        voice.param.agent_state,
    )
    def errors(
        page_error: str, voice_error: str, notice: str, stack_problem: str, agent_state: str
    ) -> pn.viewable.Viewable:
        message = page_error or voice_error
        if message:
            return pn.pane.Alert(message, alert_type="danger")
        if agent_state == "gone" and voice.active:
            return pn.pane.Alert(AGENT_GONE, alert_type="warning")
        if stack_problem and not voice.active:
            return pn.pane.Alert(stack_problem, alert_type="warning")
        return pn.pane.Alert(notice, alert_type="info") if notice else pn.Spacer(height=0)

    @pn.depends(page.param.settings_note)
    def note(text: str) -> pn.viewable.Viewable:
        return pn.pane.Alert(text, alert_type="warning") if text else pn.Spacer(height=0)

    words = (
        [pn.pane.Markdown("## Transcript"), transcript]
        if page.show_transcript
        else [pn.pane.Markdown("*The transcript is hidden (Settings → Show transcript).*")]
    )
    return pn.Column(
        pn.FlexBox(start_button, stop_button, mute),
        pn.FlexBox(prompt, stack, variables, microphone, speaker),  # wraps on narrow screens
        note,
        errors,
        status,
        voice,
        *words,
        sizing_mode="stretch_width",
    )

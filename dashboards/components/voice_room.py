"""VoiceRoom: the browser microphone in a LiveKit room with the agent, as a Panel component.

Python sets `url` and `token` (a short-lived token for this user's own room)
and flips `active`; the browser code (livekit-client, bundled offline by
`dashboards/components/web_bundle.py`) joins the room, publishes the microphone, plays the agent's audio,
and reports back `transcript` (both sides, interim and final), `agent_state`
(listening / thinking / speaking, or gone when the agent left), whether the
microphone is live, the audio devices to choose from, `connection`, `stats` (round-trip time,
packet loss, jitter from the sender's RTC statistics) and `heard` (voice to voice
per agent reply measured from the audio: end of the user's voice on the
microphone to the first audible agent audio).
"""

from __future__ import annotations

from pathlib import Path

import param
from panel.custom import JSComponent

from dashboards.components.web_bundle import bundle_path
from workbench.config import get_settings

_MISSING = """
export function render({ el }) {
  const note = document.createElement("div");
  note.setAttribute("role", "alert");
  note.textContent = "The voice component is not built: run ./dev up (it bundles livekit-client once).";
  el.append(note);
  return note;
}
"""


def _esm() -> str | Path:
    path = bundle_path(get_settings().cache_dir)
    return path if path.exists() else _MISSING


class VoiceRoom(JSComponent):
    """A live voice connection to the agent in one LiveKit room."""

    url = param.String(default="", doc="LiveKit server URL the browser connects to")
    token = param.String(default="", doc="access token for this user's room only")
    active = param.Boolean(default=False, doc="join (True) or leave (False) the room")
    muted = param.Boolean(default=False, doc="microphone muted (asked)")
    microphone_on = param.Boolean(default=False, doc="the room has the microphone live (reported)")
    microphone = param.String(default="", doc="the chosen audio input's device id ('': default)")
    speaker = param.String(default="", doc="the chosen audio output's device id ('': default)")
    microphones = param.List(default=[], doc="[{id, label}] audio inputs the browser offers")
    speakers = param.List(default=[], doc="[{id, label}] audio outputs the browser offers")
    connection = param.String(default="disconnected", doc="LiveKit connection state")
    agent_state = param.String(
        default="", doc="the agent's state: listening, thinking, speaking; 'gone' once it left"
    )
    agent_present = param.Boolean(default=False, doc="an agent is in the room")
    transcript = param.List(default=[], doc="[{speaker, text, final}] in order")
    stats = param.Dict(default={}, doc="rtt_ms, packets_lost, packets_sent, jitter_ms")
    heard = param.List(
        default=[], doc="[{ordinal, heard_s}]: voice to voice per agent reply as heard here"
    )
    error = param.String(default="", doc="why joining failed, if it did")

    _esm = _esm()

// Browser side of the VoiceRoom component: the microphone joins a LiveKit room,
// the agent's audio plays through the page, and the transcript, the agent's
// state and the connection statistics flow back to Python through the model.
// Bundled with livekit-client by esbuild (workbench/stack/web_bundle.py); no CDN at run time.
import { Room, RoomEvent, Track, ConnectionState } from "livekit-client";

const STATS_INTERVAL_MS = 2000;

export function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "voice-room";
  const status = document.createElement("div");
  status.className = "voice-room-status";
  status.setAttribute("role", "status");
  const audio = document.createElement("div"); // remote audio elements live here
  audio.hidden = true;
  root.append(status, audio);
  el.append(root);

  let room = null;
  let statsTimer = null;
  const lines = new Map(); // segment id -> transcript entry, so interim text is replaced

  function show(text) {
    status.textContent = text;
  }

  function publishTranscript() {
    model.transcript = Array.from(lines.values());
  }

  async function collectStats() {
    if (!room) return;
    const pub = room.localParticipant.getTrackPublication(Track.Source.Microphone);
    const track = pub && pub.track;
    if (!track || typeof track.getSenderStats !== "function") return;
    const s = await track.getSenderStats();
    if (!s) return;
    model.stats = {
      rtt_ms: s.roundTripTime !== undefined ? Math.round(s.roundTripTime * 1000) : null,
      packets_lost: s.packetsLost !== undefined ? s.packetsLost : null,
      packets_sent: s.packetsSent !== undefined ? s.packetsSent : null,
      jitter_ms: s.jitter !== undefined ? Math.round(s.jitter * 1000) : null,
    };
  }

  async function connect() {
    if (room || !model.token || !model.url) return;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      // Browsers expose the microphone only to secure pages (https, or localhost).
      model.error = "This page cannot use the microphone: open it over https (or on localhost).";
      show(model.error);
      model.active = false;
      return;
    }
    lines.clear();
    publishTranscript();
    room = new Room({ adaptiveStream: true, dynacast: true });
    room.on(RoomEvent.TrackSubscribed, (track) => {
      if (track.kind === Track.Kind.Audio) {
        // A remote track reaches the speakers only while attached to a media element.
        audio.append(track.attach());
      }
    });
    room.on(RoomEvent.TrackUnsubscribed, (track) => track.detach().forEach((e) => e.remove()));
    room.on(RoomEvent.ParticipantAttributesChanged, (changed) => {
      if ("lk.agent.state" in changed) model.agent_state = changed["lk.agent.state"];
    });
    room.on(RoomEvent.ParticipantConnected, (participant) => {
      const state = participant.attributes && participant.attributes["lk.agent.state"];
      if (state) model.agent_state = state;
    });
    room.on(RoomEvent.ConnectionStateChanged, (state) => {
      model.connection = state;
      show(state === ConnectionState.Connected ? "Connected: speak when you are ready." : `Connection: ${state}`);
    });
    room.on(RoomEvent.Disconnected, () => {
      model.connection = "disconnected";
      model.agent_state = "";
      cleanup();
    });
    room.registerTextStreamHandler("lk.transcription", async (reader, participantInfo) => {
      const attributes = reader.info.attributes || {};
      const micPub = room && room.localParticipant.getTrackPublication(Track.Source.Microphone);
      const fromUser =
        participantInfo.identity === room.localParticipant.identity ||
        (micPub && attributes["lk.transcribed_track_id"] === micPub.trackSid);
      const id = attributes["lk.segment_id"] || reader.info.id;
      let text = "";
      for await (const chunk of reader) {
        text += chunk;
        lines.set(id, { speaker: fromUser ? "user" : "agent", text, final: false });
        publishTranscript();
      }
      lines.set(id, { speaker: fromUser ? "user" : "agent", text, final: true });
      publishTranscript();
    });
    try {
      show("Connecting…");
      await room.connect(model.url, model.token);
      await room.localParticipant.setMicrophoneEnabled(!model.muted);
      statsTimer = setInterval(() => collectStats().catch(() => {}), STATS_INTERVAL_MS);
      model.error = "";
    } catch (err) {
      model.error = `Could not join the room: ${err && err.message ? err.message : err}`;
      const failed = room;
      cleanup();
      if (failed) await failed.disconnect();
      show(model.error);
      model.active = false;
    }
  }

  function cleanup() {
    if (statsTimer) clearInterval(statsTimer);
    statsTimer = null;
    audio.replaceChildren();
    room = null;
  }

  async function disconnect() {
    const current = room;
    cleanup();
    if (current) await current.disconnect();
    show("Not connected.");
  }

  model.on("active", () => (model.active ? connect() : disconnect()));
  model.on("muted", () => {
    if (room) room.localParticipant.setMicrophoneEnabled(!model.muted);
  });
  model.on("remove", () => disconnect());
  show("Not connected.");
  if (model.active) connect();
  return root;
}

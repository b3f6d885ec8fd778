// Browser side of the VoiceRoom component: the microphone joins a LiveKit room,
// the agent's audio plays through the page, and the transcript, the agent's
// state and the connection statistics flow back to Python through the model.
// Bundled with livekit-client by esbuild (workbench/stack/web_bundle.py); no CDN at run time.
import { Room, RoomEvent, Track, ConnectionState, ParticipantKind } from "livekit-client";

const STATS_INTERVAL_MS = 2000;
const METER_INTERVAL_MS = 20;
const USER_VOICE_RMS = 0.02; // microphone level counted as the user speaking
const AGENT_AUDIO_RMS = 0.01; // agent audio level counted as heard

function rms(analyser, buffer) {
  analyser.getFloatTimeDomainData(buffer);
  let sum = 0;
  for (const x of buffer) sum += x * x;
  return Math.sqrt(sum / buffer.length);
}

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

  // Voice-to-voice as heard here: from the last moment the microphone carried the
  // user's voice to the first audible audio of the agent's next reply. A reply
  // starts when the agent's state turns "speaking"; it counts only if the user
  // said something the agent transcribed since the previous reply (so not the
  // greeting). Replies are numbered in order (0 = the first agent turn), which
  // is how the database pairs the measurement with the agent's turn.
  const meter = { ctx: null, timer: null, mic: null, agent: null, buffer: new Float32Array(1024),
                  lastVoiceAt: null, replies: 0, awaitingAudio: false, userSpoke: false };

  function analyse(track) {
    const source = meter.ctx.createMediaStreamSource(new MediaStream([track]));
    const analyser = meter.ctx.createAnalyser();
    analyser.fftSize = 1024;
    source.connect(analyser);
    return analyser;
  }

  function startMeter() {
    meter.ctx = new AudioContext();
    meter.ctx.resume().catch(() => {});
    meter.timer = setInterval(() => {
      const now = performance.now();
      if (meter.mic && rms(meter.mic, meter.buffer) > USER_VOICE_RMS) meter.lastVoiceAt = now;
      if (meter.awaitingAudio && meter.agent && rms(meter.agent, meter.buffer) > AGENT_AUDIO_RMS) {
        meter.awaitingAudio = false;
        if (meter.userSpoke && meter.lastVoiceAt !== null) {
          const v2v = (now - meter.lastVoiceAt) / 1000;
          model.heard = [...model.heard, { ordinal: meter.replies - 1, heard_s: Math.round(v2v * 1000) / 1000 }];
        }
        meter.userSpoke = false;
      }
    }, METER_INTERVAL_MS);
  }

  function onAgentState(state) {
    model.agent_state = state;
    if (state === "speaking") {
      meter.replies += 1;
      meter.awaitingAudio = true;
    }
  }

  function show(text) {
    status.textContent = text;
  }

  // The audio devices the browser offers (labels appear once the microphone is allowed).
  async function listDevices() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    const devices = await navigator.mediaDevices.enumerateDevices();
    const named = (kind, fallback) =>
      devices
        .filter((d) => d.kind === kind && d.deviceId)
        .map((d, i) => ({ id: d.deviceId, label: d.label || `${fallback} ${i + 1}` }));
    model.microphones = named("audioinput", "Microphone");
    model.speakers = named("audiooutput", "Speaker");
  }

  async function useDevice(kind, id) {
    if (!room) return; // chosen before Start: applied when the room is built
    try {
      await room.switchActiveDevice(kind, id || "default");
      model.error = "";
    } catch (err) {
      model.error = `Could not switch to that device: ${err && err.message ? err.message : err}`;
    }
  }

  async function applyMute() {
    if (!room) return;
    await room.localParticipant.setMicrophoneEnabled(!model.muted);
    model.microphone_on = room.localParticipant.isMicrophoneEnabled;
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
    model.heard = [];
    Object.assign(meter, { lastVoiceAt: null, replies: 0, awaitingAudio: false, userSpoke: false });
    startMeter();
    room = new Room({
      adaptiveStream: true,
      dynacast: true,
      audioCaptureDefaults: model.microphone ? { deviceId: model.microphone } : undefined,
      audioOutput: model.speaker ? { deviceId: model.speaker } : undefined,
    });
    room.on(RoomEvent.TrackSubscribed, (track) => {
      if (track.kind === Track.Kind.Audio) {
        // A remote track reaches the speakers (and Web Audio) only while attached to a media element.
        audio.append(track.attach());
        if (meter.ctx) meter.agent = analyse(track.mediaStreamTrack);
      }
    });
    room.on(RoomEvent.LocalTrackPublished, (publication) => {
      if (publication.track && publication.track.kind === Track.Kind.Audio && meter.ctx) {
        meter.mic = analyse(publication.track.mediaStreamTrack);
      }
    });
    room.on(RoomEvent.TrackUnsubscribed, (track) => track.detach().forEach((e) => e.remove()));
    room.on(RoomEvent.ParticipantAttributesChanged, (changed) => {
      if ("lk.agent.state" in changed) onAgentState(changed["lk.agent.state"]);
    });
    room.on(RoomEvent.ParticipantConnected, (participant) => {
      if (participant.kind === ParticipantKind.AGENT) model.agent_present = true;
      const state = participant.attributes && participant.attributes["lk.agent.state"];
      if (state) onAgentState(state);
    });
    room.on(RoomEvent.ParticipantDisconnected, (participant) => {
      // The agent left while the user stayed: its worker stopped or failed.
      if (participant.kind === ParticipantKind.AGENT) {
        model.agent_present = false;
        model.agent_state = "gone";
      }
    });
    room.on(RoomEvent.MediaDevicesChanged, () => listDevices().catch(() => {}));
    room.on(RoomEvent.ConnectionStateChanged, (state) => {
      model.connection = state;
      show(state === ConnectionState.Connected ? "Connected: speak when you are ready." : `Connection: ${state}`);
    });
    room.on(RoomEvent.Disconnected, () => {
      model.connection = "disconnected";
      model.agent_state = "";
      model.agent_present = false;
      model.microphone_on = false;
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
      if (fromUser && text.trim()) meter.userSpoke = true;
      publishTranscript();
    });
    try {
      show("Connecting…");
      await room.connect(model.url, model.token);
      for (const participant of room.remoteParticipants.values()) {
        if (participant.kind === ParticipantKind.AGENT) model.agent_present = true;
      }
      await applyMute();
      await listDevices(); // with the microphone allowed, the devices have their names
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
    if (meter.timer) clearInterval(meter.timer);
    if (meter.ctx) meter.ctx.close().catch(() => {});
    Object.assign(meter, { timer: null, ctx: null, mic: null, agent: null });
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
  model.on("muted", () => applyMute().catch(() => {}));
  model.on("microphone", () => useDevice("audioinput", model.microphone));
  model.on("speaker", () => useDevice("audiooutput", model.speaker));
  if (navigator.mediaDevices) {
    navigator.mediaDevices.addEventListener("devicechange", () => listDevices().catch(() => {}));
  }
  listDevices().catch(() => {});
  model.on("remove", () => disconnect());
  show("Not connected.");
  if (model.active) connect();
  return root;
}

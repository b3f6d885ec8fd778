"""Prove a real WebRTC audio path through a LiveKit server.

Run as a script (usually inside a network namespace the test created):
a room is created through the server API, client "talker" publishes a
440 Hz tone, client "listener" subscribes and counts the frames and
energy it receives. Prints one JSON object with what was measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time

import numpy as np
from livekit import api, rtc

SAMPLE_RATE_HZ = 48_000
FRAME_MS = 10
TONE_HZ = 440.0


def _token(key: str, secret: str, identity: str, room: str) -> str:
    grants = api.VideoGrants(room_join=True, room=room, can_publish=True, can_subscribe=True)
    return api.AccessToken(key, secret).with_identity(identity).with_grants(grants).to_jwt()


async def _publish_tone(source: rtc.AudioSource, stop: asyncio.Event) -> None:
    samples_per_frame = SAMPLE_RATE_HZ * FRAME_MS // 1000
    phase = 0
    while not stop.is_set():
        t = (np.arange(samples_per_frame) + phase) / SAMPLE_RATE_HZ
        pcm = (0.3 * 32767 * np.sin(2 * math.pi * TONE_HZ * t)).astype(np.int16)
        phase += samples_per_frame
        frame = rtc.AudioFrame(pcm.tobytes(), SAMPLE_RATE_HZ, 1, samples_per_frame)
        await source.capture_frame(frame)


async def probe(
    url: str, key: str, secret: str, room_name: str, seconds: float
) -> dict[str, object]:
    http_url = url.replace("ws://", "http://").replace("wss://", "https://")
    async with api.LiveKitAPI(http_url, key, secret) as lkapi:
        await lkapi.room.create_room(api.CreateRoomRequest(name=room_name, empty_timeout=30))

    talker, listener = rtc.Room(), rtc.Room()
    got_track: asyncio.Future[rtc.Track] = asyncio.get_running_loop().create_future()

    @listener.on("track_subscribed")
    def _on_track(track: rtc.Track, *_: object) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO and not got_track.done():
            got_track.set_result(track)

    t0 = time.monotonic()
    await listener.connect(url, _token(key, secret, "listener", room_name))
    await talker.connect(url, _token(key, secret, "talker", room_name))
    source = rtc.AudioSource(SAMPLE_RATE_HZ, 1)
    track = rtc.LocalAudioTrack.create_audio_track("tone", source)
    await talker.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )
    stop = asyncio.Event()
    publisher = asyncio.create_task(_publish_tone(source, stop))
    remote = await asyncio.wait_for(got_track, timeout=20)
    subscribed_after_s = time.monotonic() - t0

    frames, samples, peak, energy_frames = 0, 0, 0, 0
    stream = rtc.AudioStream(remote, sample_rate=SAMPLE_RATE_HZ, num_channels=1)
    deadline = time.monotonic() + seconds
    spectrum_acc = None
    async for event in stream:
        data = np.frombuffer(event.frame.data, dtype=np.int16)
        frames += 1
        samples += data.size
        frame_peak = int(np.abs(data).max()) if data.size else 0
        peak = max(peak, frame_peak)
        if frame_peak > 1000:
            energy_frames += 1
            mag = np.abs(np.fft.rfft(data.astype(np.float32), n=4800))
            spectrum_acc = mag if spectrum_acc is None else spectrum_acc + mag
        if time.monotonic() > deadline:
            break
    dominant_hz = (
        float(np.argmax(spectrum_acc) * SAMPLE_RATE_HZ / 4800) if spectrum_acc is not None else 0.0
    )

    stop.set()
    await publisher
    await stream.aclose()
    await talker.disconnect()
    await listener.disconnect()
    return {
        "frames": frames,
        "received_s": samples / SAMPLE_RATE_HZ,
        "frames_with_signal": energy_frames,
        "peak": peak,
        "dominant_hz": dominant_hz,
        "subscribed_after_s": subscribed_after_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--room", default="media-probe")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    result = asyncio.run(
        probe(args.url, args.key, args.secret, room_name=args.room, seconds=args.seconds)
    )
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

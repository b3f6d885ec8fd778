"""The LiveKit agent worker: adapters from `workbench.models` to livekit-agents' STT/LLM/TTS,
session wiring, and persistence of turns and metrics (see ARCHITECTURE.md, issue "The voice agent")."""

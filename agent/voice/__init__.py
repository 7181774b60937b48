"""The host's voice: the Realtime model with its fallback (`voice`), the circuit breaker
(`breaker`), the AgentSession's life (`sessions`), the Agent and its tools (`host`) and the
offline voice (`offline`, over the local engines in `offline_engines`).

Nothing is imported here: the OpenJTalk child runs `python -m agent.voice.offline_engines` and
must not pay for livekit.
"""

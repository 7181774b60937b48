"""The host worker's settings (same environment names as the API's)."""

from __future__ import annotations

from pydantic import Field

from radio24.settings import StationSettings


class HostSettings(StationSettings):
    agent_name: str = "radio-host"
    host_identity: str = "host"
    host_health_port: int = 8081
    realtime_model: str = "gpt-realtime"
    realtime_voice: str = "marin"
    # Push-to-talk and the on-air loop.
    max_turn_seconds: float = Field(default=30.0, gt=1, le=300)
    silence_gap_seconds: float = Field(default=1.5, gt=0, le=5)
    # Reconnect for long outages instead of the plugin's default of 3 tries.
    realtime_max_retry: int = Field(default=1000, ge=1)
    realtime_retry_interval: float = Field(default=2.0, gt=0)

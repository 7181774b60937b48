"""The host worker's settings (same environment names as the API's), and the station clock they
set."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import Field

from core.settings import StationSettings


class HostSettings(StationSettings):
    host_health_port: int = 8081
    realtime_model: str = "gpt-realtime"
    realtime_voice: str = "marin"
    # Push-to-talk and the on-air loop.
    max_turn_seconds: float = Field(default=30.0, gt=1, le=300)
    # A caller from whom nothing is heard this long after the grant is cut (dead air otherwise,
    # up to the maximum length): long enough to find the microphone and start talking.
    max_quiet_turn_seconds: float = Field(default=4.0, gt=0, le=300)
    silence_gap_seconds: float = Field(default=1.5, gt=0, le=5)
    # Reconnect for long outages instead of the plugin's default of 3 tries.
    realtime_max_retry: int = Field(default=1000, ge=1)
    realtime_retry_interval: float = Field(default=2.0, gt=0)
    # Seconds of speech Silero VAD must hear in a press before the model gets the turn.
    min_speech_seconds: float = Field(default=0.25, ge=0, le=5)
    # The model must start speaking within this long, else the offline voice carries on.
    fallback_after_seconds: float = Field(default=2.5, gt=0, le=10)
    # The AgentSession is renewed this often (its history and event log only grow), carrying
    # a short summary; the plugin recycles its socket more often, below OpenAI's 60-minute cap.
    session_max_minutes: float = Field(default=60, gt=0)
    realtime_socket_minutes: float = Field(default=20, gt=0, lt=60)
    # The station clock: 1 is real time; the simulated day runs it faster, from a set start.
    radio_clock_speed: float = Field(default=1.0, gt=0, le=1000)
    radio_clock_start: datetime | None = None
    radio_clock_epoch: datetime | None = None  # the real time at which the clock reads start
    # The Redis consumer name in group `host` (one host per station).
    host_consumer: str = "host"
    # On SIGTERM the worker waits this long for the host's job before closing it.
    host_drain_seconds: int = Field(default=5, ge=0)
    # As-aired writes Postgres has not taken yet are kept in a file here (one per host process,
    # in a folder per station), so a host killed during an outage loses none: the station's
    # next host on this machine writes them. Relative to the working directory.
    host_spool_dir: str = ".run/spool"


def station_clock(settings: HostSettings) -> Callable[[], datetime]:
    """The station's clock: real time, or (for the simulated day) a faster one that reads
    `RADIO_CLOCK_START` at the real moment `RADIO_CLOCK_EPOCH` — shared by every job, so a host
    that takes over does not rewind the day (without an epoch: this job's start)."""
    speed = settings.radio_clock_speed
    if speed == 1.0 and settings.radio_clock_start is None:
        return lambda: datetime.now(UTC)
    epoch = settings.radio_clock_epoch or datetime.now(UTC)
    origin = settings.radio_clock_start or epoch

    def clock() -> datetime:
        return origin + (datetime.now(UTC) - epoch) * speed

    return clock

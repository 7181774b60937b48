"""What keeps the station on air, in its pure parts: the keeper's takeover rule, the console's
choice of lines, and the supervisord configuration `make run` writes."""

from __future__ import annotations

import configparser
import io
from pathlib import Path

import pytest
from livekit import api as lkapi

from api.keeper import (
    DISPATCH_GRACE_SECONDS,
    REPLACE_AFTER_POLLS,
    Act,
    Beat,
    Facts,
    Keeper,
    decide,
    parse_beat,
)
from radio24 import console, station

# --- the keeper's rule -----------------------------------------------------------------------

LIVE = Facts(
    host_sid="PA_1",
    host_seen_for=60,
    host_has_beaten=True,
    unkept_for=0,
    since_dispatch=60,
    beat_sid="PA_1",
    redis_up_for=60,
    patience=0,
)


def _with(**changes: object) -> Facts:
    return Facts(**{**LIVE.__dict__, **changes})  # type: ignore[arg-type]


def test_a_host_that_beats_is_left_alone() -> None:
    assert decide(LIVE) is Act.WAIT


def _unbeaten(**changes: object) -> Facts:
    """A poll whose heartbeat did not name the host, the second such poll in a row."""
    return _with(**{"unbeaten_polls": REPLACE_AFTER_POLLS, **changes})


def test_a_host_without_a_heartbeat_or_with_another_ones_is_replaced_at_once() -> None:
    assert decide(_unbeaten(beat_sid=None)) is Act.REPLACE
    assert decide(_unbeaten(beat_sid="PA_old")) is Act.REPLACE
    # no grace wait: a dispatch a moment ago does not hold the replacement back
    assert decide(_unbeaten(beat_sid=None, since_dispatch=0.1, host_seen_for=3.5)) is Act.REPLACE


def test_one_odd_poll_never_removes_a_healthy_host() -> None:
    """Issue 23: one poll with another sid (a new host's beat read as the old one leaves, a beat
    written between two reads) was enough to remove a healthy host."""
    assert REPLACE_AFTER_POLLS == 2
    assert decide(_with(beat_sid="PA_other", unbeaten_polls=1)) is Act.WAIT
    assert decide(_with(beat_sid=None, unbeaten_polls=1)) is Act.WAIT
    assert decide(_with(beat_sid=None, unbeaten_polls=2)) is Act.REPLACE


def test_a_host_is_never_replaced_on_what_cannot_be_known() -> None:
    assert decide(_unbeaten(beat_sid=None, host_seen_for=2.0)) is Act.WAIT  # just joined
    # never seen beating: its first seconds may block its loop; given longer, then replaced
    assert decide(_unbeaten(beat_sid=None, host_has_beaten=False, host_seen_for=6)) is Act.WAIT
    assert decide(_unbeaten(beat_sid=None, host_has_beaten=False, host_seen_for=11)) is Act.REPLACE
    assert decide(_unbeaten(beat_sid=None, redis_up_for=None)) is Act.WAIT  # Redis down
    assert decide(_unbeaten(beat_sid=None, redis_up_for=1.0)) is Act.WAIT  # Redis back, empty
    assert decide(_unbeaten(beat_sid=None, patience=16)) is Act.WAIT  # a standby never removes


def test_a_missing_host_is_dispatched_once_per_grace() -> None:
    gone = _with(host_sid=None, beat_sid=None, unkept_for=0.5)
    assert decide(gone) is Act.DISPATCH
    assert decide(_with(host_sid=None, since_dispatch=DISPATCH_GRACE_SECONDS - 1)) is Act.WAIT
    assert decide(_with(host_sid=None, redis_up_for=None)) is Act.DISPATCH  # presence only


def test_a_worker_that_registers_gets_the_missing_host_at_once() -> None:
    # LiveKit drops a dispatch made while no worker was registered: the grace wait would leave
    # the station silent for up to 8 s more after the first worker comes up.
    waiting = _with(host_sid=None, beat_sid=None, unkept_for=5, since_dispatch=1)
    assert decide(waiting) is Act.WAIT
    assert decide(_with(**{**waiting.__dict__, "worker_new": True})) is Act.DISPATCH
    # a host that is present is not disturbed by a worker registering
    assert decide(_with(worker_new=True)) is Act.WAIT
    # a standby still waits out its patience
    standby = _with(host_sid=None, patience=16, unkept_for=10, since_dispatch=1, worker_new=True)
    assert decide(standby) is Act.WAIT


def test_a_standby_acts_only_once_the_station_has_gone_unkept_long_enough() -> None:
    assert decide(_with(host_sid=None, patience=16, unkept_for=10)) is Act.WAIT
    assert decide(_with(host_sid=None, patience=16, unkept_for=16)) is Act.DISPATCH


def test_heartbeat_values_are_read_defensively() -> None:
    assert parse_beat('{"sid": "PA_1", "at": 1.5}') == "PA_1"
    assert parse_beat(b'{"sid": "PA_1"}') == "PA_1"
    for junk in (None, "", "not json", "[1]", '{"sid": 5}', '{"at": 1}'):
        assert parse_beat(junk) is None


# --- the console -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "2026-12-01T20:07:42.370Z\tWARN\tlivekit.transport\trtc/transport.go:949\terror reading",
        "2026-12-01 20:05:36.240 UTC [18441] FATAL:  the database system is in recovery mode",
        "18364:M 01 Dec 2026 20:05:35.977 # Can't open the append-only file: Permission denied",
        '{"time": "x", "level": "WARNING", "logger": "radio24.keeper", "message": "host removed"}',
        '{"message": "process exited with non-zero exit code -9", "level": "ERROR", "pid": 1}',
        "Traceback (most recent call last):",
    ],
)
def test_warnings_and_errors_of_every_part_reach_the_console(line: str) -> None:
    shown = console.warning(line)
    assert shown is not None and len(shown) <= console.MAX_LINE


@pytest.mark.parametrize(
    "line",
    [
        "2026-12-01T20:05:47.495Z\tINFO\tlivekit\tagent/client.go:150\tnot dispatching agent job",
        "2026-12-01 20:05:36.240 UTC [18441] LOG:  database system is ready to accept connections",
        "18364:M 01 Dec 2026 20:05:35.977 * Ready to accept connections",
        "18364:C 01 Dec 2026 20:05:35.970 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo",
        '2026-12-01 20:05:36.240 UTC [1] ERROR:  table "yoyo_tmp_828lGYo8BI" does not exist',
        '{"time": "x", "level": "INFO", "logger": "radio24.keeper", "message": "host dispatched"}',
        '{"message": "an ERROR word inside an INFO message", "level": "INFO"}',
        "",
    ],
)
def test_routine_lines_stay_in_the_log_files(line: str) -> None:
    assert console.warning(line) is None


def test_a_repeated_warning_is_shown_once_per_window_then_counted() -> None:
    now = [0.0]
    repeats = console.Repeats(window=30, clock=lambda: now[0])
    assert repeats.admit("host-1", "WARNING blocked for 338ms") == "WARNING blocked for 338ms"
    now[0] = 5
    assert repeats.admit("host-1", "WARNING blocked for 117ms") is None  # same shape
    assert repeats.admit("host-2", "WARNING blocked for 117ms") is not None  # another part
    now[0] = 31
    shown = repeats.admit("host-1", "WARNING blocked for 90ms")
    assert shown == "WARNING blocked for 90ms (and 1 more like it)"


def test_part_state_changes_read_as_sentences() -> None:
    died = console.state_line("PROCESS_STATE_EXITED", {"processname": "host-1", "expected": "0",
                                                        "pid": "42"})  # fmt: skip
    assert died == "WARNING host-1 died (pid 42); restarting it"
    retry = console.state_line("PROCESS_STATE_BACKOFF", {"processname": "redis", "tries": "3"})
    assert retry is not None and "retrying in 3 s" in retry
    gave_up = console.state_line("PROCESS_STATE_FATAL", {"processname": "redis"})
    assert gave_up is not None and gave_up.startswith("ERROR redis gave up")
    up = {"processname": "api", "pid": "7"}
    assert console.state_line("PROCESS_STATE_RUNNING", up) == "api is up (pid 7)"
    assert console.state_line("PROCESS_STATE_RUNNING", up, again=True) == "api is up again (pid 7)"
    assert console.state_line("PROCESS_STATE_RUNNING", {"processname": "banner"}) is None
    assert console.state_line("PROCESS_STATE_STARTING", up) is None


def _event(name: str, payload: str) -> str:
    return f"ver:3.0 server:supervisor serial:1 pool:console poolserial:1 eventname:{name} " \
        f"len:{len(payload.encode())}\n{payload}"  # fmt: skip


def test_the_listener_speaks_supervisords_protocol_and_joins_split_lines() -> None:
    head = "processname:api groupname:api pid:7 channel:stdout\n"
    events = (
        _event("PROCESS_LOG_STDOUT", head + '{"level": "WARN')
        + _event("PROCESS_LOG_STDOUT", head + 'ING", "message": "redis down"}\nplain line\n')
        + _event(
            "PROCESS_STATE_EXITED",
            "processname:redis groupname:redis from_state:RUNNING expected:0 pid:9",
        )
    )
    stdout, out = io.StringIO(), io.StringIO()
    console.listen(io.StringIO(events), stdout, out)
    assert stdout.getvalue() == "READY\nRESULT 2\nOK" * 3 + "READY\n"
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].endswith("api       WARNING redis down")
    assert lines[1].endswith("redis     WARNING redis died (pid 9); restarting it")


# --- supervisord's configuration -------------------------------------------------------------


def test_every_part_is_restarted_with_back_off_and_logs_rotated(tmp_path: Path) -> None:
    text = station.supervisor_config(station.programs(True, True), tmp_path, "u", "p")
    conf = configparser.RawConfigParser()
    conf.read_string(text)
    parts = [s.removeprefix("program:") for s in conf.sections() if s.startswith("program:")]
    assert parts == ["livekit", "postgres", "redis", "api", "host-1", "host-2", "banner"]
    for name in parts:
        section = conf[f"program:{name}"]
        assert section["killasgroup"] == "true"  # nothing of a stuck part is left behind
        if name == "banner":
            assert section["stdout_logfile"] == "/dev/stdout"
            continue
        assert section["autorestart"] == "true"
        assert int(section["startretries"]) >= 100
        assert section["stdout_logfile"] == str(tmp_path / "logs" / f"{name}.log")
        assert section["stdout_logfile_maxbytes"] == station.LOG_MAX_BYTES
        assert section["stdout_events_enabled"] == "true"
    ports = {conf[f"program:host-{i}"]["environment"] for i in (1, 2)}
    assert len(ports) == 2, "each host worker has its own health port"
    assert conf["eventlistener:console"]["events"] == "PROCESS_STATE,PROCESS_LOG"
    assert conf["supervisord"]["nodaemon"] == "true"
    assert conf["unix_http_server"]["chmod"] == "0700"


def test_supervisord_itself_accepts_the_configuration(tmp_path: Path) -> None:
    from supervisor.options import ServerOptions

    (tmp_path / "logs").mkdir()
    path = tmp_path / "supervisord.conf"
    path.write_text(station.supervisor_config(station.programs(False, True), tmp_path, "u", "p"))
    options = ServerOptions()
    options.realize(["-c", str(path)])
    names = [g.name for g in options.process_group_configs]
    assert names == ["console", "livekit", "redis", "api", "host-1", "host-2", "banner"]
    assert all(g.process_configs[0].autorestart for g in options.process_group_configs
               if g.name not in ("banner",))  # fmt: skip


class _Station:
    """LiveKit's server API as the keeper uses it: one room, one host participant, dispatches."""

    def __init__(self, host_sid: str) -> None:
        self.host_sid: str | None = host_sid
        self.removed: list[str] = []
        self.dispatched = 0
        self.room = self
        self.agent_dispatch = self

    async def list_rooms(self, req: lkapi.ListRoomsRequest) -> lkapi.ListRoomsResponse:
        return lkapi.ListRoomsResponse(rooms=[lkapi.Room(name="radio24")])

    async def list_participants(
        self, req: lkapi.ListParticipantsRequest
    ) -> lkapi.ListParticipantsResponse:
        hosts = [lkapi.ParticipantInfo(identity="host", sid=self.host_sid)] if self.host_sid else []
        return lkapi.ListParticipantsResponse(participants=hosts)

    async def remove_participant(self, req: lkapi.RoomParticipantIdentity) -> None:
        self.removed.append(req.identity)
        self.host_sid = None

    async def list_dispatch(self, room: str) -> list[lkapi.AgentDispatch]:
        return []

    async def create_dispatch(self, req: lkapi.CreateAgentDispatchRequest) -> lkapi.AgentDispatch:
        self.dispatched += 1
        return lkapi.AgentDispatch(id=f"AD_{self.dispatched}", agent_name=req.agent_name)


async def test_the_keeper_removes_a_host_only_after_two_bad_polls_in_a_row() -> None:
    now = [0.0]
    station = _Station("PA_new")
    keeper = Keeper(station, "radio24", clock=lambda: now[0])  # type: ignore[arg-type]

    async def poll(sid: str | None) -> Act:
        now[0] += 0.5
        return await keeper.check(Beat(answered=True, sid=sid), redis_up_for=60.0)

    for _ in range(30):  # settled and beating
        assert await poll("PA_new") is Act.WAIT
    # One odd read (the old job's beat, or none) and then the host's own again: kept.
    assert await poll("PA_old") is Act.WAIT
    assert await poll("PA_new") is Act.WAIT
    assert await poll(None) is Act.WAIT
    assert await poll("PA_new") is Act.WAIT
    assert station.removed == [] and station.dispatched == 0
    # Two in a row: the host is gone for real, and a new one is dispatched.
    assert await poll(None) is Act.WAIT
    assert await poll(None) is Act.REPLACE
    assert station.removed == ["host"] and station.dispatched == 1

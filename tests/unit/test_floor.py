"""The push-to-talk floor's rules, with a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agent.call_in.floor import Floor, FloorBusy, NotHolder, TurnEnd
from tests.fakes.clock import FakeClock

START = datetime(2030, 1, 1, 23, 59, 50, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def floor(clock: FakeClock) -> Floor:
    return Floor(clock, timedelta(seconds=30))


def test_free_at_first(floor: Floor) -> None:
    assert floor.state.free
    assert floor.state.as_attribute() == {
        "state": "free",
        "holder": None,
        "since": None,
        "deadline": None,
        "ended": None,
    }


def test_a_caller_takes_and_ends_a_turn(floor: Floor, clock: FakeClock) -> None:
    state = floor.start("alice")
    assert state.holder == "alice" and state.since == START
    assert state.deadline == START + timedelta(seconds=30)
    assert floor.state.as_attribute()["state"] == "held"
    clock.advance(seconds=4)  # across midnight: durations stay right
    turn = floor.end("alice")
    assert turn.caller == "alice" and turn.how is TurnEnd.ENDED and turn.keep
    assert turn.duration == timedelta(seconds=4)
    assert floor.state.free


def test_second_caller_is_told_busy(floor: Floor) -> None:
    floor.start("alice")
    with pytest.raises(FloorBusy) as err:
        floor.start("bob")
    assert err.value.code == "busy" and "busy" in str(err.value)
    assert floor.holder == "alice"


def test_holder_asking_again_keeps_the_turn(floor: Floor, clock: FakeClock) -> None:
    first = floor.start("alice")
    clock.advance(seconds=1)
    assert floor.start("alice") == first


@pytest.mark.parametrize("method", ["end", "cancel"])
def test_only_the_holder_can_end_or_cancel(floor: Floor, method: str) -> None:
    with pytest.raises(NotHolder):
        getattr(floor, method)("alice")  # nobody holds it
    floor.start("alice")
    with pytest.raises(NotHolder) as err:
        getattr(floor, method)("bob")
    assert err.value.code == "not_holder"
    assert floor.holder == "alice"


def test_cancel_keeps_nothing(floor: Floor) -> None:
    floor.start("alice")
    turn = floor.cancel("alice")
    assert turn.how is TurnEnd.CANCELLED and not turn.keep
    assert floor.state.free


def test_turn_is_cut_at_the_maximum_length(floor: Floor, clock: FakeClock) -> None:
    floor.start("alice")
    clock.advance(seconds=29.9)
    assert floor.expire() is None
    clock.advance(seconds=5)
    turn = floor.expire()
    assert turn is not None and turn.how is TurnEnd.TIMED_OUT and turn.keep
    assert turn.duration == timedelta(seconds=30)
    assert floor.state.free
    assert floor.expire() is None
    with pytest.raises(NotHolder):
        floor.end("alice")  # the late release is refused: the turn is over


def test_late_release_never_makes_a_longer_turn(floor: Floor, clock: FakeClock) -> None:
    floor.start("alice")
    clock.advance(seconds=45)
    assert floor.end("alice").duration == timedelta(seconds=30)


def test_caller_leaving_frees_the_floor(floor: Floor) -> None:
    floor.start("alice")
    assert floor.left("bob") is None
    assert floor.holder == "alice"
    turn = floor.left("alice")
    assert turn is not None and turn.how is TurnEnd.LEFT and not turn.keep
    assert floor.state.free
    floor.start("bob")
    assert floor.holder == "bob"


def test_max_turn_must_be_positive(clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        Floor(clock, timedelta(0))


def test_a_caller_who_says_nothing_is_cut_at_the_quiet_limit(clock: FakeClock) -> None:
    floor = Floor(clock, timedelta(seconds=30), timedelta(seconds=4))
    floor.start("alice")
    clock.advance(seconds=3.9)
    assert floor.expire(heard=False) is None  # still finding the microphone
    clock.advance(seconds=0.2)
    turn = floor.expire(heard=False)
    assert turn is not None and turn.how is TurnEnd.QUIET and not turn.keep
    # Pages tell the caller why the floor was taken back (not "ended by the studio").
    assert floor.state.as_attribute()["ended"] == {"holder": turn.caller, "how": "quiet"}
    assert turn.duration == timedelta(seconds=4)  # ended at the limit, not at the check
    assert floor.state.free


def test_a_caller_who_has_spoken_keeps_the_turn_to_the_maximum(clock: FakeClock) -> None:
    floor = Floor(clock, timedelta(seconds=30), timedelta(seconds=4))
    floor.start("alice")
    clock.advance(seconds=10)
    assert floor.expire(heard=True) is None  # a pause after speaking is the caller's
    clock.advance(seconds=20)
    turn = floor.expire(heard=False)  # past the maximum, the maximum is the reason
    assert turn is not None and turn.how is TurnEnd.TIMED_OUT and turn.keep


def test_without_a_quiet_limit_only_the_maximum_cuts(floor: Floor, clock: FakeClock) -> None:
    floor.start("alice")
    clock.advance(seconds=29)
    assert floor.expire(heard=False) is None
    with pytest.raises(ValueError):
        Floor(clock, timedelta(seconds=30), timedelta(0))

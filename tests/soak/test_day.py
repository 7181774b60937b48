"""The short soak: the whole station for a simulated two hours (≈2 minutes of wall time).

The same run and the same checks as `make soak` (bench/day.py), with the issue's targets scaled
to two hours: RSS growth after warm-up within 50 MB/day, no growth in fds or threads, longest
silence heard ≤ 5 s through an outage, a stall and a fatal model error, every segment and
station ID within one cue of its minute (or skipped by the director's design while a caller
or the host was busy through its grace), no post lost or aired twice, nothing spent while nobody
listened, the PTT turns granted (as many as real-time audio fits: bench/day_script.py). A leak,
a drift or a silence fails CI; the figures land in test-artifacts/soak/.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from bench import day, day_report
from bench.day_script import DayPlan
from tests.conftest import ARTIFACTS

pytestmark = [pytest.mark.soak, pytest.mark.integration]


@pytest.mark.timeout(330)
def test_two_hours_on_air() -> None:
    plan = DayPlan(
        speed=72.0,
        hours=2.0,
        start=datetime.fromisoformat("2026-12-07T06:20:00+09:00"),  # a Monday: IDs, 07:00 change
        outage_seconds=8.0,
        stall_seconds=8.0,
        max_turn_seconds=4.0,  # a "max" press holds 6 s: calls fit the 100 real seconds
        session_minutes=0.75,
        drop_ins_per_hour=2.0,
    )
    report = day.run(plan, ARTIFACTS / "soak" / "day")
    print(day_report.table(report))
    failed = [c for c in report["checks"] if not c["ok"]]
    assert not failed, "\n".join(f"{c['name']}: {c['value']} ({c['target']})" for c in failed)

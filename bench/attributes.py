"""How long a participant attribute update takes: the SDK's answer, against pages seeing it.

The host shows the floor, the segment and what is playing as its participant attributes. Its
`set_attributes` call returns when the SDK has the SFU's answer; pages only need the update. This
measures both, side by side, for the same updates, through a real LiveKit server on loopback:

    .venv/bin/python -m bench.attributes [--updates 200] [--gap 0.05]   (from the repository root)

One "host" participant (allowed to update its own attributes) sets one attribute `--updates`
times, `--gap` seconds apart, and a "page" participant in the same room notes when each value
arrives (`participant_attributes_changed`). Times are `time.monotonic()` in this process. An
update that never reaches the page within 5 s counts as a miss (infinite), never as skipped.
Prints median, p95, p99 and max of both, and how many calls took over 1 s; writes
`bench/results/attributes.json`. `agent/on_air/display.py` chose its patience (1 s) from this.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import tempfile
import time
from pathlib import Path

from livekit import api, rtc

from bench.quantiles import quantile
from radio24 import rack

RESULTS = Path(__file__).parent / "results" / "attributes.json"


async def measure(url: str, key: str, secret: str, updates: int, gap: float) -> dict[str, object]:
    def token(identity: str, own_metadata: bool) -> str:
        grants = api.VideoGrants(room_join=True, room="bench", can_update_own_metadata=own_metadata)
        return api.AccessToken(key, secret).with_identity(identity).with_grants(grants).to_jwt()

    host, page = rtc.Room(), rtc.Room()
    await host.connect(url, token("host", True))
    await page.connect(url, token("page", False))
    arrived: dict[str, float] = {}
    all_arrived = asyncio.Event()

    @page.on("participant_attributes_changed")
    def _changed(changed: dict[str, str], participant: rtc.Participant) -> None:
        if "n" in changed:
            arrived[changed["n"]] = time.monotonic()
            if len(arrived) == updates:
                all_arrived.set()

    await asyncio.sleep(1.0)  # both joined and seeing each other
    sent: dict[str, float] = {}
    calls: list[float] = []
    try:
        for i in range(updates):
            sent[str(i)] = t0 = time.monotonic()
            await host.local_participant.set_attributes({"n": str(i)})
            calls.append(time.monotonic() - t0)
            await asyncio.sleep(gap)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_arrived.wait(), 5.0)
    finally:
        await host.disconnect()
        await page.disconnect()
    seen = [arrived[n] - t0 if n in arrived else math.inf for n, t0 in sent.items()]
    return {"calls": calls, "seen": seen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.05)
    args = parser.parse_args()
    key, secret = "bench", secrets.token_hex(24)
    port, tcp = rack.free_port(), rack.free_port()
    with tempfile.TemporaryDirectory(prefix="radio24-attrs-") as tmp:
        proc = rack.popen(rack.livekit(port, tcp, 46000, key, secret), Path(tmp) / "livekit.log")
        try:
            rack.wait_port(port, 60, proc)
            run = asyncio.run(
                measure(f"ws://127.0.0.1:{port}", key, secret, args.updates, args.gap)
            )
        finally:
            rack.stop(proc)
    rows = []
    for what, xs in (("set_attributes returns", run["calls"]), ("page sees it", run["seen"])):
        assert isinstance(xs, list)
        rows.append(
            {
                "what": what,
                "median_ms": quantile(xs, 0.5) * 1000,
                "p95_ms": quantile(xs, 0.95) * 1000,
                "p99_ms": quantile(xs, 0.99) * 1000,
                "max_ms": max(xs) * 1000,
                "over_1s": sum(1 for x in xs if x > 1.0),
                "missed": sum(1 for x in xs if math.isinf(x)),
            }
        )
    print(f"{args.updates} attribute updates, {args.gap * 1000:.0f} ms apart, loopback SFU")
    print(f"{'':24} {'median':>8} {'p95':>8} {'p99':>8} {'max':>8} {'>1 s':>5} {'missed':>6}")
    for r in rows:
        print(
            f"{r['what']:24} {r['median_ms']:7.1f}ms {r['p95_ms']:7.1f}ms {r['p99_ms']:7.1f}ms "
            f"{r['max_ms']:7.0f}ms {r['over_1s']:5} {r['missed']:6}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "updates": args.updates,
                "gap_s": args.gap,
                "load_average": os.getloadavg(),
                "summary": rows,
                "calls_s": run["calls"],
                "seen_s": [None if math.isinf(x) else x for x in run["seen"]],
            },
            indent=2,
        )
    )
    print(f"written: {RESULTS}")


if __name__ == "__main__":
    main()

// Reading the live events and the host's attributes into the contract's shapes.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseEvent, parseFloor, parseNowPlaying, parseSegment } from "../src/events";

const segment = {
  id: "late",
  title: "Late Night",
  starts: "2026-01-01T23:00:00+09:00",
  ends: "2026-01-02T01:00:00+09:00",
};
const next = { id: "dawn", title: "Dawn", starts: "2026-01-02T01:00:00+09:00" };
const floor = {
  state: "held",
  holder: "kai",
  holder_name: "Kai",
  since: null,
  deadline: null,
  ended: null,
};
const json = (v: unknown) => JSON.stringify(v);

describe("live events", () => {
  test("the snapshot, as the API sends it", () => {
    assert.deepEqual(parseEvent(json({ type: "snapshot", segment, next, floor, listeners: 7 })), {
      type: "snapshot",
      segment,
      next,
      floor,
      now_playing: null,
      listeners: 7,
    });
  });

  test("a snapshot field that does not fit is left out, the others kept", () => {
    const e = parseEvent(
      json({ type: "snapshot", segment: "late", next, floor: { state: "?" }, listeners: "7" }),
    );
    assert.deepEqual(e, {
      type: "snapshot",
      segment: null,
      next,
      floor: null,
      now_playing: null,
      listeners: null,
    });
  });

  test("an empty snapshot (nothing on the board yet)", () => {
    assert.deepEqual(
      parseEvent(
        json({ type: "snapshot", segment: null, next: null, floor: null, listeners: null }),
      ),
      {
        type: "snapshot",
        segment: null,
        next: null,
        floor: null,
        now_playing: null,
        listeners: null,
      },
    );
  });

  test("segment, floor, listeners, now playing, post status", () => {
    assert.deepEqual(parseEvent(json({ type: "segment", segment, next })), {
      type: "segment",
      segment,
      next,
    });
    assert.deepEqual(parseEvent(json({ type: "floor", floor })), { type: "floor", floor });
    assert.deepEqual(parseEvent(json({ type: "listeners", count: 3 })), {
      type: "listeners",
      count: 3,
    });
    assert.deepEqual(parseEvent(json({ type: "now_playing", now_playing: null })), {
      type: "now_playing",
      now_playing: null,
    });
    assert.deepEqual(
      parseEvent(json({ type: "post_status", post_id: "p1", listener_id: "l1", status: "aired" })),
      {
        type: "post_status",
        post_id: "p1",
        listener_id: "l1",
        status: "aired",
      },
    );
  });

  test("the contract's names only: the old aliases are not events", () => {
    assert.equal(parseEvent(json({ type: "listeners", listeners: 3 })), null);
    assert.equal(parseEvent(json({ type: "listeners", count: -1 })), null);
    assert.equal(parseEvent(json({ type: "post_status", id: "p1", status: "aired" })), null);
    assert.equal(parseEvent(json({ type: "segment", now: segment, next })), null);
    assert.equal(parseEvent(json({ type: "floor", state: "held", holder: "kai" })), null);
  });

  test("anything else is dropped", () => {
    for (const raw of [
      "not json",
      "[]",
      "null",
      json({ type: "banned", listener_id: "x" }),
      json({ count: 1 }),
    ]) {
      assert.equal(parseEvent(raw), null, raw);
    }
  });
});

describe("the host's attributes", () => {
  test("the floor", () => {
    assert.deepEqual(parseFloor(json(floor)), floor);
    assert.deepEqual(parseFloor(json({ state: "free", holder: null })), {
      state: "free",
      holder: null,
    });
    assert.equal(parseFloor(undefined), null);
    assert.equal(parseFloor("held"), null);
    assert.equal(parseFloor(json({ state: "held", holder: 3 })), null);
  });

  test("the segment, with the next one inside", () => {
    assert.deepEqual(parseSegment(json({ ...segment, next })), { now: segment, next });
    assert.deepEqual(parseSegment(json(segment)), { now: segment, next: null });
    assert.deepEqual(parseSegment(undefined), { now: null, next: null });
    assert.deepEqual(parseSegment("late"), { now: null, next: null });
  });

  test("the track playing, or nothing while the host talks", () => {
    const track = { title: "Blue", artist: "Mika", kind: "track" };
    assert.deepEqual(parseNowPlaying(json(track)), track);
    assert.equal(parseNowPlaying("null"), null);
    assert.equal(parseNowPlaying(undefined), null);
    assert.equal(parseNowPlaying(json({ artist: "Mika" })), null);
  });
});

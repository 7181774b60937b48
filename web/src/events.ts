// Reading what the station sends the pages: the live events on the API's socket and the host's
// participant attributes in the room. The shapes are the contract's (contract/events.py, through
// the generated types); a message that does not fit them is dropped, never guessed at.

import type {
  FloorEnded,
  FloorInfo,
  NextSegment,
  NowPlaying,
  PageEvent,
  SegmentInfo,
  Snapshot,
} from "./contract";

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isText(v: unknown): v is string {
  return typeof v === "string";
}

/** An optional text field: absent, null or a string. */
function maybeText(v: unknown): v is string | null | undefined {
  return v === undefined || v === null || typeof v === "string";
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0;
}

export function isSegment(v: unknown): v is SegmentInfo {
  return isObject(v) && isText(v.id) && isText(v.title) && isText(v.starts) && maybeText(v.ends);
}

export function isNextSegment(v: unknown): v is NextSegment {
  return isObject(v) && isText(v.id) && isText(v.title) && isText(v.starts);
}

function isEnded(v: unknown): v is FloorEnded {
  return isObject(v) && isText(v.holder) && isText(v.how);
}

export function isFloor(v: unknown): v is FloorInfo {
  return (
    isObject(v) &&
    (v.state === "free" || v.state === "held") &&
    maybeText(v.holder) &&
    maybeText(v.holder_name) &&
    maybeText(v.since) &&
    maybeText(v.deadline) &&
    (v.ended === undefined || v.ended === null || isEnded(v.ended))
  );
}

export function isNowPlaying(v: unknown): v is NowPlaying {
  return isObject(v) && isText(v.title) && maybeText(v.artist) && maybeText(v.kind);
}

/** The snapshot with each field alone: one that does not fit is left out (null), as the API's
 * own `contract.events.snapshot` does, so one bad value does not blank the others. */
function snapshot(o: Json): Snapshot {
  return {
    type: "snapshot",
    segment: isSegment(o.segment) ? o.segment : null,
    next: isNextSegment(o.next) ? o.next : null,
    floor: isFloor(o.floor) ? o.floor : null,
    now_playing: isNowPlaying(o.now_playing) ? o.now_playing : null,
    listeners: isCount(o.listeners) ? o.listeners : null,
  };
}

/** One message from `WS /api/ws`, or null for anything that is not an event the page knows. */
export function parseEvent(data: string): PageEvent | null {
  let o: unknown;
  try {
    o = JSON.parse(data);
  } catch {
    return null;
  }
  if (!isObject(o)) return null;
  switch (o.type) {
    case "snapshot":
      return snapshot(o);
    case "segment":
      return isSegment(o.segment) && isNextSegment(o.next)
        ? { type: "segment", segment: o.segment, next: o.next }
        : null;
    case "floor":
      return isFloor(o.floor) ? { type: "floor", floor: o.floor } : null;
    case "now_playing":
      return o.now_playing === null || isNowPlaying(o.now_playing)
        ? { type: "now_playing", now_playing: o.now_playing }
        : null;
    case "listeners":
      return isCount(o.count) ? { type: "listeners", count: o.count } : null;
    case "post_status":
      return isText(o.post_id) && isText(o.listener_id) && isText(o.status)
        ? { type: "post_status", post_id: o.post_id, listener_id: o.listener_id, status: o.status }
        : null;
    default:
      return null;
  }
}

// --- the host's attributes (JSON strings on the host participant) -----------------------------

function json(raw: string | undefined): unknown {
  if (!raw) return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

/** `radio24.floor`: the floor as the host holds it. */
export function parseFloor(raw: string | undefined): FloorInfo | null {
  const v = json(raw);
  return isFloor(v) ? v : null;
}

/** `radio24.segment`: the segment on air with the one after it in `next`. */
export function parseSegment(raw: string | undefined): {
  now: SegmentInfo | null;
  next: NextSegment | null;
} {
  const v = json(raw);
  if (!isObject(v)) return { now: null, next: null };
  const { next, ...now } = v;
  return { now: isSegment(now) ? now : null, next: isNextSegment(next) ? next : null };
}

/** `radio24.now_playing`: the track on air, or null while the host talks. */
export function parseNowPlaying(raw: string | undefined): NowPlaying | null {
  const v = json(raw);
  return isNowPlaying(v) ? v : null;
}

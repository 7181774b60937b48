// The contract between the pages and the API (api/**) and host (agent/**), in one place.
//
// Field names, routes and the host's RPC/attribute names live here so a change on the server
// side is a change in this one file. Readers are tolerant (`pick`) where the server's shape is
// still settling; everything the pages use is normalised into the types below.

// The host's identity when the API does not say (it does: LiveKitGrant.hostIdentity).
export const DEFAULT_HOST_IDENTITY = "host";
export const RPC = { start: "start_turn", end: "end_turn", cancel: "cancel_turn" } as const;
// Host participant attributes (agent/on_air.py): JSON strings.
export const ATTR_FLOOR = "radio24.floor"; // {state: free|held, holder, since, deadline}
export const ATTR_SEGMENT = "radio24.segment"; // {id, title, starts, ends, next: {id, title, starts}}
export const ATTR_NOW_PLAYING = "radio24.now_playing"; // {title, artist, kind} or null
export const TOPIC_TRANSCRIPTION = "lk.transcription";
export const ATTR_SEGMENT_ID = "lk.segment_id";
export const ATTR_FINAL = "lk.transcription_final";
export const MAX_POST_CHARS = 500;
export const DEFAULT_MAX_TURN_SECONDS = 30;

export type Role = "listener" | "producer" | "admin";
export type PostStatus = "queued" | "aired" | "rejected" | "hidden";
export type PostAction = "approve" | "hide" | "reject";

export interface Session {
  token: string;
  role: Role;
  name: string;
  expiresAt: number | null; // epoch ms
}

export interface LiveKitGrant {
  url: string;
  token: string;
  room: string;
  identity: string;
  hostIdentity: string; // the only participant (with the floor holder) whose captions count
  expiresAt: number | null; // epoch ms: the token only opens the room, so it is short
}

export interface Post {
  id: string;
  text: string;
  status: PostStatus;
  reason: string | null;
  createdAt: string | null;
  airedAt: string | null;
  author: string | null;
}

export interface SegmentInfo {
  id: string;
  title: string;
  starts: string | null;
  ends: string | null;
}

export interface Schedule {
  stationName: string;
  language: string; // "ja" | "en" | ...
  timezone: string | null;
  now: SegmentInfo | null;
  next: SegmentInfo | null;
  today: SegmentInfo[]; // the rest of today, from now on
}

export interface FloorInfo {
  state: "free" | "held";
  holder: string | null; // the caller's identity
  holderName: string | null; // their nickname, when the host sends it
  since: string | null;
  deadline: string | null;
  ended: { holder: string; how: string } | null; // whose turn ended last, and how
}

export interface Utterance {
  id: string;
  kind: string; // "host" | "caller"
  speaker: string;
  text: string;
  segment: string | null;
  mode: string | null;
  startedAt: string;
  endedAt: string | null;
  interrupted: boolean;
}

export interface PromptProblem {
  file: string | null;
  line: number | null;
  message: string;
  fix: string | null;
  text: string; // the line as `radio24 prompts check` prints it
}

export interface PromptStatus {
  ok: boolean;
  checkedAt: string | null;
  problems: PromptProblem[];
}

export type StationEvent =
  | {
      type: "snapshot"; // the first message on the socket: the public state as it is now
      now: SegmentInfo | null;
      next: SegmentInfo | null;
      floor: FloorInfo | null;
      listeners: number | null;
    }
  | { type: "segment"; now: SegmentInfo | null; next: SegmentInfo | null }
  | { type: "floor"; floor: FloorInfo }
  | { type: "listeners"; count: number }
  | { type: "post_status"; id: string; status: PostStatus; reason: string | null };

/** An API answer that is not a success; `message` is the server's sentence when it gave one. */
export class ApiError extends Error {
  constructor(
    readonly status: number, // 0: the station could not be reached
    message: string,
    readonly retryAfter: number | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

// --- reading loosely-shaped JSON --------------------------------------------------------------

type Json = Record<string, unknown>;

function obj(v: unknown): Json {
  return v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : {};
}

function pick(o: Json, ...keys: string[]): unknown {
  for (const k of keys) if (o[k] !== undefined && o[k] !== null) return o[k];
  return null;
}

function str(v: unknown): string | null {
  return typeof v === "string" ? v : typeof v === "number" ? String(v) : null;
}

function list(v: unknown, ...keys: string[]): unknown[] {
  if (Array.isArray(v)) return v;
  const inner = pick(obj(v), ...keys);
  return Array.isArray(inner) ? inner : [];
}

/** The payload of a JWT, unverified: the page only uses it for display (role, expiry). */
export function jwtClaims(token: string): Json {
  try {
    const part = token.split(".")[1] ?? "";
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return obj(JSON.parse(new TextDecoder().decode(bytes)));
  } catch {
    return {};
  }
}

function toSession(body: unknown, fallbackName: string, fallbackRole: Role): Session {
  // api/auth.py TokenOut: {token, token_type, expires_at, person: {id, nickname, role}}
  const o = obj(body);
  const person = obj(pick(o, "person", "listener", "user"));
  const token = str(pick(o, "token", "access_token")) ?? "";
  const claims = jwtClaims(token);
  const role = (str(pick(person, "role")) ??
    str(pick(o, "role")) ??
    str(pick(claims, "role")) ??
    fallbackRole) as Role;
  const name =
    str(pick(person, "nickname", "name")) ?? str(pick(claims, "name")) ?? fallbackName;
  const expiresIso = str(pick(o, "expires_at"));
  const exp = pick(claims, "exp");
  const expiresAt = expiresIso
    ? Date.parse(expiresIso)
    : typeof exp === "number"
      ? exp * 1000
      : null;
  return { token, role, name, expiresAt };
}

export function toSegment(v: unknown): SegmentInfo | null {
  if (typeof v === "string") return v ? { id: v, title: v, starts: null, ends: null } : null;
  const o = obj(v);
  const seg = obj(pick(o, "segment"));
  const id = str(pick(o, "id", "segment_id")) ?? str(pick(seg, "id")) ?? str(pick(o, "segment"));
  if (!id) return null;
  return {
    id,
    title: str(pick(o, "title")) ?? str(pick(seg, "title")) ?? id,
    starts: str(pick(o, "starts", "starts_at", "start", "from")),
    ends: str(pick(o, "ends", "ends_at", "end", "to")),
  };
}

export function toFloor(v: unknown): FloorInfo {
  let o: Json;
  if (typeof v === "string") {
    try {
      o = obj(JSON.parse(v));
    } catch {
      o = { state: v };
    }
  } else o = obj(v);
  const holder = str(pick(o, "holder"));
  const state = str(pick(o, "state")) === "held" || holder ? "held" : "free";
  return {
    state,
    holder: state === "held" ? holder : null,
    holderName: state === "held" ? str(pick(o, "holder_name", "name")) : null,
    since: str(pick(o, "since")),
    deadline: str(pick(o, "deadline")),
    ended: toEnded(pick(o, "ended")),
  };
}

function toEnded(v: unknown): FloorInfo["ended"] {
  const o = obj(v);
  const holder = str(pick(o, "holder"));
  const how = str(pick(o, "how"));
  return holder && how ? { holder, how } : null;
}

export interface NowPlaying {
  title: string;
  artist: string;
}

/** The host's `now_playing` attribute: the track on air, or null while the host talks. */
export function parseNowPlaying(raw: string | undefined): NowPlaying | null {
  if (!raw) return null;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return null;
  }
  const o = obj(v);
  const title = str(o.title);
  return title ? { title, artist: str(o.artist) ?? "" } : null;
}

/** The host's `segment` attribute: JSON ({id,title} or {now,next}) or a plain segment id. */
export function parseSegmentAttribute(raw: string | undefined): {
  now: SegmentInfo | null;
  next: SegmentInfo | null;
} {
  if (!raw) return { now: null, next: null };
  let v: unknown = raw;
  try {
    v = JSON.parse(raw);
  } catch {
    /* a plain id */
  }
  const o = obj(v);
  if (o.now !== undefined || o.current !== undefined) {
    return { now: toSegment(pick(o, "now", "current")), next: toSegment(o.next) };
  }
  return { now: toSegment(v), next: toSegment(o.next) };
}

function toPost(v: unknown): Post {
  const o = obj(v);
  return {
    id: str(o.id) ?? "",
    text: str(o.text) ?? "",
    status: (str(o.status) ?? "queued") as PostStatus,
    reason: str(pick(o, "reason")),
    createdAt: str(pick(o, "created_at", "createdAt")),
    airedAt: str(pick(o, "aired_at", "airedAt")),
    author: str(pick(o, "author", "nickname", "author_nickname")),
  };
}

function toUtterance(v: unknown): Utterance {
  const o = obj(v);
  return {
    id: str(o.id) ?? "",
    kind: str(o.kind) ?? "host",
    speaker: str(pick(o, "person", "nickname", "speaker")) ?? "",
    text: str(o.text) ?? "",
    segment: str(o.segment),
    mode: str(o.mode),
    startedAt: str(pick(o, "started_at", "start", "at")) ?? "",
    endedAt: str(pick(o, "ended_at", "end")),
    interrupted: Boolean(o.interrupted),
  };
}

export function toSchedule(v: unknown): Schedule {
  // api/programme.py ScheduleOut: {station: name, language?, timezone, at, now: Slot, next: Slot,
  // today?: Slot[]} with Slot {segment, title, style, starts, ends, listener_corner}.
  const o = obj(v);
  const station = obj(o.station);
  return {
    stationName:
      (typeof o.station === "string" ? o.station : null) ??
      str(pick(station, "name")) ??
      str(pick(o, "station_name", "name")) ??
      "radio24",
    language: str(pick(o, "language")) ?? str(pick(station, "language")) ?? "",
    timezone: str(pick(o, "timezone")) ?? str(pick(station, "timezone")),
    now: toSegment(pick(o, "now", "current")),
    next: toSegment(o.next),
    today: list(pick(o, "today", "rest_of_today", "later"))
      .map(toSegment)
      .filter((s): s is SegmentInfo => s !== null),
  };
}

function toPromptStatus(v: unknown): PromptStatus {
  const o = obj(v);
  const problems = list(pick(o, "problems", "errors")).map((p): PromptProblem => {
    if (typeof p === "string") return { file: null, line: null, message: p, fix: null, text: p };
    const q = obj(p);
    const file = str(q.file);
    const line = typeof q.line === "number" ? q.line : null;
    const message = str(pick(q, "message", "msg")) ?? "";
    const fix = str(q.fix);
    const text =
      str(pick(q, "text", "printed")) ??
      `${file ?? ""}${line !== null ? `:${line}` : ""}: ${message}${fix ? ` — ${fix}` : ""}`;
    return { file, line, message, fix, text };
  });
  const ok = typeof o.ok === "boolean" ? o.ok : problems.length === 0;
  return { ok, checkedAt: str(pick(o, "checked_at", "at")), problems };
}

export function toEvent(v: unknown): StationEvent | null {
  const o = obj(v);
  switch (o.type) {
    case "snapshot": {
      const n = o.listeners;
      return {
        type: "snapshot",
        now: toSegment(pick(o, "segment", "now")),
        next: toSegment(o.next),
        floor: o.floor ? toFloor(o.floor) : null,
        listeners: typeof n === "number" ? n : null,
      };
    }
    case "segment":
      return {
        type: "segment",
        now: toSegment(pick(o, "now", "current", "segment")),
        next: toSegment(o.next),
      };
    case "floor":
      return { type: "floor", floor: toFloor(pick(o, "floor") ?? o) };
    case "listeners": {
      const n = pick(o, "count", "listeners", "value");
      return typeof n === "number" ? { type: "listeners", count: n } : null;
    }
    case "post_status":
      return {
        type: "post_status",
        id: str(pick(o, "id", "post_id")) ?? "",
        status: (str(o.status) ?? "queued") as PostStatus,
        reason: str(o.reason),
      };
    default:
      return null;
  }
}

// --- HTTP ---------------------------------------------------------------------------------------

/** The server's own sentence from an error body: FastAPI's `detail` (string or list) or `message`. */
function errorMessage(body: unknown): { message: string; code: string | null } {
  const o = obj(body);
  const detail = o.detail;
  if (typeof detail === "string") return { message: detail, code: str(o.code) };
  if (Array.isArray(detail)) {
    const msgs = detail.map((d) => str(obj(d).msg) ?? "").filter(Boolean);
    return { message: msgs.join(" ").replace(/^Value error, /, ""), code: "validation" };
  }
  const d = obj(detail);
  const message = str(pick(d, "message", "msg")) ?? str(pick(o, "message", "error")) ?? "";
  return { message, code: str(pick(d, "code")) ?? str(o.code) };
}

async function call(
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = { Accept: "application/json", ...opts.headers };
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  let init: RequestInit = { method, headers };
  if (opts.body !== undefined) {
    headers["Content-Type"] = "application/json";
    init = { ...init, body: JSON.stringify(opts.body) };
  }
  let res: Response;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, "unreachable");
  }
  const text = await res.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  if (!res.ok) {
    const { message, code } = errorMessage(body);
    const ra = res.headers.get("Retry-After");
    const retryAfter = ra !== null && /^\d+$/.test(ra.trim()) ? Number(ra) : null;
    throw new ApiError(res.status, message, retryAfter, code);
  }
  return { status: res.status, body };
}

export const api = {
  async join(nickname: string): Promise<Session> {
    const { body } = await call("POST", "/api/session", { body: { nickname } });
    return toSession(body, nickname, "listener");
  },

  async login(username: string, password: string): Promise<Session> {
    const { body } = await call("POST", "/api/auth/login", { body: { username, password } });
    return toSession(body, username, "producer");
  },

  async livekitToken(token: string): Promise<LiveKitGrant> {
    const { body } = await call("POST", "/api/livekit/token", { token });
    const o = obj(body);
    const expires = str(o.expires_at);
    return {
      url: str(o.url) ?? "",
      token: str(o.token) ?? "",
      room: str(o.room) ?? "",
      identity: str(o.identity) ?? "",
      hostIdentity: str(o.host_identity) ?? DEFAULT_HOST_IDENTITY,
      expiresAt: expires ? Date.parse(expires) : null,
    };
  },

  /** A one-time ticket for the live-event socket: the API token never goes in a URL. */
  async wsTicket(token: string): Promise<string> {
    const { body } = await call("POST", "/api/ws/ticket", { token });
    return str(obj(body).ticket) ?? "";
  },

  async post(token: string, text: string, idempotencyKey: string): Promise<Post> {
    const { body } = await call("POST", "/api/posts", {
      token,
      body: { text },
      headers: { "Idempotency-Key": idempotencyKey },
    });
    return toPost(body);
  },

  async myPosts(token: string): Promise<Post[]> {
    const { body } = await call("GET", "/api/posts/mine", { token });
    return list(body, "posts", "items").map(toPost);
  },

  async posts(token: string, status: PostStatus | "all"): Promise<Post[]> {
    const q = status === "all" ? "" : `?status=${encodeURIComponent(status)}`;
    const { body } = await call("GET", `/api/posts${q}`, { token });
    return list(body, "posts", "items").map(toPost);
  },

  async review(token: string, id: string, action: PostAction): Promise<Post> {
    const { body } = await call("PATCH", `/api/posts/${encodeURIComponent(id)}`, {
      token,
      body: { action },
    });
    return toPost(body);
  },

  async aired(token: string, from: string, to: string): Promise<Utterance[]> {
    const q = new URLSearchParams({ from, to });
    const { body } = await call("GET", `/api/aired?${q}`, { token });
    return list(body, "utterances", "items", "aired").map(toUtterance);
  },

  async schedule(): Promise<Schedule> {
    const { body } = await call("GET", "/api/schedule");
    return toSchedule(body);
  },

  async promptStatus(token: string): Promise<PromptStatus> {
    const { body } = await call("GET", "/api/prompts/status", { token });
    return toPromptStatus(body);
  },
};

/** `WS /api/ws`: browsers cannot set headers on a websocket, so a one-time ticket (not the
 * token, which would land in access logs) goes in the query. */
export function eventsUrl(ticket: string): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/api/ws?ticket=${encodeURIComponent(ticket)}`;
}

/** A random key; `crypto.randomUUID` exists only in secure contexts, `getRandomValues` always. */
export function newIdempotencyKey(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// The API as the pages call it: its routes and bodies typed from its own OpenAPI schema
// (generated/api.d.ts, from api.main by web/codegen/schema.py), called through openapi-fetch.
// A route, parameter or field renamed on the server fails the pages' type-check.

import createClient from "openapi-fetch";
import type { components, paths } from "./generated/api";

type Schemas = components["schemas"];

export type Role = Schemas["PersonOut"]["role"];
export type Post = Schemas["PostOut"]; // a listener's own post
export type ReviewedPost = Schemas["ReviewedPostOut"]; // a post as producers see it
export type PostStatus = Post["status"];
export type PostAction = Schemas["ReviewIn"]["action"];
export type Review = Schemas["ReviewOut"];
export type LiveKitGrant = Schemas["LiveKitTokenOut"]; // host_identity: whose captions count
export type Schedule = Schemas["ScheduleOut"];
export type Aired = Schemas["AiredOut"];
export type PromptsStatus = Schemas["PromptsStatusOut"];
export type Problem = Schemas["ProblemOut"];

// Every status a post can have (checked complete against the schema's enum).
const STATUSES: Record<PostStatus, true> = {
  queued: true,
  aired: true,
  rejected: true,
  hidden: true,
};

export function isPostStatus(s: string): s is PostStatus {
  return Object.prototype.hasOwnProperty.call(STATUSES, s);
}

/** The signed-in person as the page keeps it (localStorage): not a wire shape. */
export interface Session {
  token: string;
  role: Role;
  name: string;
  expiresAt: number | null; // epoch ms
}

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

/** A problem as `radio24 prompts check` prints it: file, line, message and fix. */
export function printProblem(p: Problem): string {
  return `${p.file}:${p.line}: ${p.message}${p.fix ? ` — ${p.fix}` : ""}`;
}

// --- HTTP ---------------------------------------------------------------------------------------

// JSON only: the as-aired route also answers CSV (for spreadsheets), which the pages never ask for.
const client = createClient<paths, "application/json">({
  baseUrl: "",
  headers: { Accept: "application/json" },
});

function bearer(token: string): { headers: { Authorization: string } } {
  return { headers: { Authorization: `Bearer ${token}` } };
}

/** The server's own sentence from an error body: FastAPI's `detail`, a string, or for a request
 * that failed validation a list of `HTTPValidationError` items. */
export function errorMessage(body: unknown): { message: string; code: string | null } {
  const detail =
    typeof body === "object" && body !== null ? (body as { detail?: unknown }).detail : null;
  if (typeof detail === "string") return { message: detail, code: null };
  if (Array.isArray(detail)) {
    const items = detail as Partial<Schemas["ValidationError"]>[];
    const msgs = items.map((d) => (typeof d?.msg === "string" ? d.msg : "")).filter(Boolean);
    return { message: msgs.join(" ").replace(/^Value error, /, ""), code: "validation" };
  }
  return { message: "", code: null };
}

/** `Retry-After` in seconds, when the server gave a number of them. */
export function retryAfter(header: string | null): number | null {
  return header !== null && /^\d+$/.test(header.trim()) ? Number(header) : null;
}

/** The body of a successful answer; anything else as an ApiError. */
async function ok<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let answer: { data?: T; error?: unknown; response: Response };
  try {
    answer = await call;
  } catch {
    throw new ApiError(0, "unreachable");
  }
  const { data, error, response } = answer;
  if (response.ok && data !== undefined) return data;
  const { message, code } = errorMessage(error);
  throw new ApiError(
    response.status,
    message,
    retryAfter(response.headers.get("Retry-After")),
    code,
  );
}

function toSession(t: Schemas["TokenOut"]): Session {
  return {
    token: t.token,
    role: t.person.role,
    name: t.person.nickname,
    expiresAt: Date.parse(t.expires_at),
  };
}

export const api = {
  async join(nickname: string): Promise<Session> {
    return toSession(await ok(client.POST("/api/session", { body: { nickname } })));
  },

  async login(username: string, password: string): Promise<Session> {
    return toSession(await ok(client.POST("/api/auth/login", { body: { username, password } })));
  },

  /** A room token: it only opens the room, so it is short-lived; ask for one per join. */
  livekitToken(token: string): Promise<LiveKitGrant> {
    return ok(client.POST("/api/livekit/token", bearer(token)));
  },

  /** A one-time ticket for the live-event socket: the API token never goes in a URL. */
  async wsTicket(token: string): Promise<string> {
    return (await ok(client.POST("/api/ws/ticket", bearer(token)))).ticket;
  },

  post(token: string, text: string, idempotencyKey: string): Promise<Post> {
    return ok(
      client.POST("/api/posts", {
        ...bearer(token),
        params: { header: { "Idempotency-Key": idempotencyKey } },
        body: { text },
      }),
    );
  },

  myPosts(token: string): Promise<Post[]> {
    return ok(client.GET("/api/posts/mine", bearer(token)));
  },

  posts(token: string, status: PostStatus | "all"): Promise<ReviewedPost[]> {
    const query = status === "all" ? {} : { status };
    return ok(client.GET("/api/posts", { ...bearer(token), params: { query } }));
  },

  review(token: string, id: string, action: PostAction): Promise<Review> {
    return ok(
      client.PATCH("/api/posts/{post_id}", {
        ...bearer(token),
        params: { path: { post_id: id } },
        body: { action },
      }),
    );
  },

  aired(token: string, from: string, to: string): Promise<Aired[]> {
    return ok(client.GET("/api/aired", { ...bearer(token), params: { query: { from, to } } }));
  },

  schedule(): Promise<Schedule> {
    return ok(client.GET("/api/schedule"));
  },

  promptStatus(token: string): Promise<PromptsStatus> {
    return ok(client.GET("/api/prompts/status", bearer(token)));
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

// What both pages share: the stored session and the live-events socket (DOM helpers: dom.ts).

import { ApiError, type Session, api, eventsUrl } from "./api";
import type { PageEvent } from "./contract";
import { parseEvent } from "./events";

// --- the stored session -------------------------------------------------------------------------

/** Kept in localStorage so a reload keeps the nickname and the posts; one key per page kind. */
export function loadSession(key: string): Session | null {
  try {
    const raw = localStorage.getItem(key);
    if (!raw) return null;
    const s = JSON.parse(raw) as Session;
    if (!s.token || (s.expiresAt !== null && s.expiresAt < Date.now() + 60_000)) return null;
    return s;
  } catch {
    return null;
  }
}

export function saveSession(key: string, session: Session | null): void {
  if (session) localStorage.setItem(key, JSON.stringify(session));
  else localStorage.removeItem(key);
}

export const LISTENER_KEY = "radio24.listener";
export const STUDIO_KEY = "radio24.studio";

// --- live events (WS /api/ws) -------------------------------------------------------------------

/**
 * The API's event socket, reconnecting with backoff until `close()`. Each connection starts
 * with a fresh one-time ticket. A socket closed by the server with 4401/4403 (or 1008), or a
 * ticket refused with 401/403, means the token is no good: `onAuthFailed`, no retry.
 */
export class EventStream {
  private ws: WebSocket | null = null;
  private closed = false;
  private attempt = 0;
  private timer: number | undefined;

  constructor(
    private readonly token: string,
    private readonly onEvent: (e: PageEvent) => void,
    private readonly onState: (open: boolean) => void = () => {},
    private readonly onAuthFailed: () => void = () => {},
  ) {
    void this.open();
  }

  private retry(): void {
    const delay = Math.min(30_000, 1000 * 2 ** this.attempt++) * (0.75 + Math.random() / 2);
    this.timer = window.setTimeout(() => void this.open(), delay);
  }

  private async open(): Promise<void> {
    if (this.closed) return;
    let ticket: string;
    try {
      ticket = await api.wsTicket(this.token);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        this.onAuthFailed();
        return;
      }
      this.retry();
      return;
    }
    if (this.closed) return;
    const ws = new WebSocket(eventsUrl(ticket));
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.onState(true);
    };
    ws.onmessage = (m) => {
      const e = parseEvent(String(m.data)); // null: not an event this page knows
      if (e) this.onEvent(e);
    };
    ws.onclose = (c) => {
      this.onState(false);
      if (this.closed) return;
      if (c.code === 4401 || c.code === 4403 || c.code === 1008) {
        this.onAuthFailed();
        return;
      }
      this.retry();
    };
  }

  close(): void {
    this.closed = true;
    window.clearTimeout(this.timer);
    this.ws?.close();
  }
}

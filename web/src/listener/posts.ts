// Writing in: the message box with its counter, sending (a retry keeps its idempotency key),
// the API's refusals in words, and the listener's own posts with their status as it changes.

import { ApiError, type Post, type PostStatus, api, newIdempotencyKey } from "../api";
import { MAX_POST_CHARS } from "../contract";
import { el } from "../dom";
import { type Key, t } from "../i18n";

export const SHOWN_POSTS = 20;

/** Characters as the listener counts them (and the API does): code points, trimmed. */
export function postLength(text: string): number {
  return [...text.trim()].length;
}

/** Any API failure in words, for the listener: the server's own sentence when it gave one. */
export function describe(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 0) return t("error.unreachable");
    if (err.status === 401) return t("error.session");
    return err.message || t("error.generic", { status: err.status });
  }
  return t("error.generic", { status: err instanceof Error ? err.message : String(err) });
}

/** A refused post in words; `forgetKey`: the next send is a new post (a new idempotency key). */
export function postError(err: unknown, text: string): { message: string; forgetKey: boolean } {
  const said = (message: string, forgetKey = false) => ({ message, forgetKey });
  if (!(err instanceof ApiError)) return said(describe(err));
  const n = postLength(text);
  switch (err.status) {
    case 422:
      return said(
        n > MAX_POST_CHARS
          ? t("post.tooLong", { n, max: MAX_POST_CHARS })
          : t("post.invalid", { msg: err.message || String(err.status) }),
      );
    case 429: // the limit counts this one: the text sent again later is a new post
      return said(
        err.retryAfter !== null
          ? t("post.rateLimited", { s: err.retryAfter })
          : t("post.rateLimitedNoTime"),
        true,
      );
    case 400:
    case 403:
    case 409:
      return said(
        err.message ? t("post.rejected", { msg: err.message }) : t("post.rejectedNoReason"),
      );
    default:
      return said(describe(err));
  }
}

/** The listener's own posts by id. */
export class MyPosts {
  private readonly posts = new Map<string, Post>();

  get size(): number {
    return this.posts.size;
  }

  /** A post as the API returned it; a text the answer left empty keeps the one known. */
  upsert(post: Post): void {
    const old = this.posts.get(post.id);
    this.posts.set(post.id, { ...old, ...post, text: post.text || old?.text || "" });
  }

  /** A status from the live events; false when the post is not known here (yet). */
  setStatus(id: string, status: PostStatus): boolean {
    const old = this.posts.get(id);
    if (!old) return false;
    this.posts.set(id, { ...old, status });
    return true;
  }

  /** The newest first, at most SHOWN_POSTS. */
  shown(): Post[] {
    return [...this.posts.values()]
      .sort((a, b) => b.created_at.localeCompare(a.created_at))
      .slice(0, SHOWN_POSTS);
  }
}

export interface WriteInDeps {
  token(): string | null; // the session's API token, if joined
  sessionEnded(): void;
}

export interface WriteInUi {
  form: HTMLFormElement;
  text: HTMLTextAreaElement;
  counter: HTMLElement;
  send: HTMLButtonElement;
  message: HTMLElement;
  list: HTMLElement;
}

export class WriteIn {
  private readonly mine = new MyPosts();
  private pending: { text: string; key: string } | null = null;

  constructor(
    private readonly ui: WriteInUi,
    private readonly d: WriteInDeps,
  ) {
    ui.text.addEventListener("input", () => this.renderCounter());
    ui.form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.send();
    });
  }

  get count(): number {
    return this.mine.size;
  }

  renderCounter(): void {
    const n = postLength(this.ui.text.value);
    this.ui.counter.textContent = t("post.counter", { n, max: MAX_POST_CHARS });
    this.ui.counter.dataset.over = String(n > MAX_POST_CHARS);
  }

  private say(text: string, kind: "ok" | "error" | "info"): void {
    this.ui.message.textContent = text;
    this.ui.message.dataset.kind = kind;
  }

  async send(): Promise<void> {
    const token = this.d.token();
    if (!token) return;
    const text = this.ui.text.value.trim();
    if (!text) {
      this.say(t("post.empty"), "error");
      return;
    }
    // The same text retried keeps its key, so a retry after a lost answer is not a second post.
    if (this.pending?.text !== text) this.pending = { text, key: newIdempotencyKey() };
    this.ui.send.disabled = true;
    this.say(t("post.sending"), "info");
    try {
      const post = await api.post(token, text, this.pending.key);
      this.pending = null;
      this.upsert(post);
      if (post.status === "rejected") {
        this.say(
          post.reason ? t("post.rejected", { msg: post.reason }) : t("post.rejectedNoReason"),
          "error",
        );
      } else {
        this.say(t("post.sent"), "ok");
        this.ui.text.value = "";
        this.renderCounter();
      }
    } catch (err) {
      const { message, forgetKey } = postError(err, text);
      if (forgetKey) this.pending = null;
      this.say(message, "error");
    } finally {
      this.ui.send.disabled = false;
    }
  }

  private upsert(post: Post): void {
    this.mine.upsert(post);
    this.render();
  }

  /** A status change from the live events (a post not known here yet: ask for the list). */
  statusChanged(id: string, status: PostStatus): void {
    if (this.mine.setStatus(id, status)) this.render();
    else void this.refresh();
  }

  async refresh(): Promise<void> {
    const token = this.d.token();
    if (!token) return;
    try {
      for (const p of await api.myPosts(token)) this.mine.upsert(p);
      this.render();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) this.d.sessionEnded();
    }
  }

  render(): void {
    this.ui.list.replaceChildren(
      ...this.mine.shown().map((p) =>
        el(
          "li",
          { attrs: { "data-id": p.id, "data-status": p.status } },
          el("span", { class: "text", text: p.text }),
          el("span", {
            class: `status status-${p.status}`,
            text:
              t(`status.${p.status}` as Key) +
              (p.reason && p.status === "rejected" ? ` (${p.reason})` : ""),
          }),
        ),
      ),
    );
  }
}

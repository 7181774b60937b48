// The producers' studio: the post queue, the as-aired log, the schedule, the prompts' health,
// and what the station is doing now. Only producers and admins get past the login.

import {
  type Aired,
  ApiError,
  type PostAction,
  type PostStatus,
  type PromptsStatus,
  type ReviewedPost,
  type Session,
  api,
  printProblem,
} from "./api";
import { EventStream, LISTENER_KEY, STUDIO_KEY, loadSession, saveSession } from "./common";
import { $, el, show } from "./dom";
import type { FloorInfo } from "./contract";
import { type Key, applyStrings, formatTime, setLanguage, setTimeZone, t } from "./i18n";

const ui = {
  stationName: $("#station-name"),
  listeners: $("#listeners"),
  floor: $("#floor"),
  who: $("#who"),
  logout: $<HTMLButtonElement>("#logout"),
  banner: $("#banner"),
  login: $("#login"),
  loginForm: $<HTMLFormElement>("#login-form"),
  username: $<HTMLInputElement>("#username"),
  password: $<HTMLInputElement>("#password"),
  loginButton: $<HTMLButtonElement>("#login-button"),
  loginError: $("#login-error"),
  desk: $("#desk"),
  queueFilter: $<HTMLSelectElement>("#queue-filter"),
  queueRefresh: $<HTMLButtonElement>("#queue-refresh"),
  queueMessage: $("#queue-message"),
  queue: $("#queue"),
  nowTitle: $("#now-title"),
  nowUntil: $("#now-until"),
  later: $("#later"),
  promptsSummary: $("#prompts-summary"),
  promptsProblems: $("#prompts-problems"),
  airedForm: $<HTMLFormElement>("#aired-form"),
  airedFrom: $<HTMLInputElement>("#aired-from"),
  airedTo: $<HTMLInputElement>("#aired-to"),
  airedMessage: $("#aired-message"),
  aired: $("#aired"),
};

let session: Session | null = null;
let events: EventStream | null = null;
let refreshTimer: number | undefined;

setLanguage(navigator.language);
applyStrings();

// --- who may enter ------------------------------------------------------------------------------

function staff(s: Session | null): boolean {
  return s !== null && (s.role === "producer" || s.role === "admin");
}

function showLogin(message = ""): void {
  stop();
  show(ui.desk, false);
  show(ui.login, true);
  show(ui.logout, false);
  show(ui.who, false);
  ui.loginError.textContent = message;
}

function refuse(): void {
  // A listener's token (or a demoted producer's): the studio stays shut.
  saveSession(STUDIO_KEY, null);
  session = null;
  showLogin(t("login.forbidden"));
}

ui.loginForm.addEventListener("submit", (e) => {
  e.preventDefault();
  void login();
});

async function login(): Promise<void> {
  ui.loginError.textContent = "";
  ui.loginButton.disabled = true;
  try {
    const s = await api.login(ui.username.value.trim(), ui.password.value);
    ui.password.value = "";
    if (!staff(s)) {
      refuse();
      return;
    }
    session = s;
    saveSession(STUDIO_KEY, s);
    open();
  } catch (err) {
    ui.loginError.textContent =
      err instanceof ApiError && err.status === 401 ? t("login.failed") : describe(err);
  } finally {
    ui.loginButton.disabled = false;
  }
}

ui.logout.addEventListener("click", () => {
  saveSession(STUDIO_KEY, null);
  session = null;
  showLogin();
});

function open(): void {
  if (!session) return;
  show(ui.login, false);
  show(ui.desk, true);
  show(ui.logout, true);
  show(ui.who, true);
  ui.who.textContent = session.name;
  setDefaultAiredRange();
  void refreshAll();
  events?.close();
  events = new EventStream(session.token, (e) => {
    switch (e.type) {
      case "snapshot":
        if (typeof e.listeners === "number") showListeners(e.listeners);
        if (e.floor) showFloor(e.floor);
        break;
      case "listeners":
        showListeners(e.count);
        break;
      case "floor":
        showFloor(e.floor);
        break;
      case "segment":
        void loadSchedule();
        break;
      case "post_status":
        void loadQueue();
        break;
      case "now_playing":
        break; // the studio does not show the track
    }
  });
  window.clearInterval(refreshTimer);
  refreshTimer = window.setInterval(() => void refreshAll(), 30_000);
}

function stop(): void {
  events?.close();
  events = null;
  window.clearInterval(refreshTimer);
}

/** Any 401/403 from a producer route sends the page back to the login. */
async function guarded<T>(f: (token: string) => Promise<T>): Promise<T | null> {
  if (!session) return null;
  try {
    return await f(session.token);
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) refuse();
    else if (err instanceof ApiError && err.status === 401) {
      saveSession(STUDIO_KEY, null);
      session = null;
      showLogin(t("error.session"));
    } else throw err;
    return null;
  }
}

async function refreshAll(): Promise<void> {
  await Promise.allSettled([loadQueue(), loadSchedule(), loadPrompts(), loadAired()]);
}

// --- the post queue -----------------------------------------------------------------------------

ui.queueFilter.addEventListener("change", () => void loadQueue());
ui.queueRefresh.addEventListener("click", () => void loadQueue());

async function loadQueue(): Promise<void> {
  const status = ui.queueFilter.value as PostStatus | "all";
  try {
    const posts = await guarded((tok) => api.posts(tok, status));
    if (posts) renderQueue(posts);
  } catch (err) {
    ui.queueMessage.textContent = describe(err);
  }
}

const ACTIONS: { action: PostAction; key: Key; hiddenFor: PostStatus[] }[] = [
  { action: "approve", key: "queue.approve", hiddenFor: ["queued", "aired"] },
  { action: "hide", key: "queue.hide", hiddenFor: ["hidden", "aired"] },
  { action: "reject", key: "queue.reject", hiddenFor: ["rejected", "aired"] },
];

function renderQueue(posts: ReviewedPost[]): void {
  if (posts.length === 0) {
    ui.queue.replaceChildren(el("li", { class: "muted empty", text: t("queue.empty") }));
    return;
  }
  ui.queue.replaceChildren(
    ...posts.map((p) => {
      const buttons = ACTIONS.filter((a) => !a.hiddenFor.includes(p.status)).map((a) => {
        const b = el("button", {
          class: a.action === "approve" ? "primary small" : "ghost small",
          text: t(a.key),
          attrs: { type: "button", "data-action": a.action },
        });
        b.addEventListener("click", () => void review(p, a.action, b));
        return b;
      });
      return el(
        "li",
        { attrs: { "data-id": p.id, "data-status": p.status } },
        el(
          "div",
          { class: "meta" },
          el("strong", { text: p.author }),
          el("span", { class: "muted", text: ` ${formatTime(p.created_at, true)} ` }),
          el("span", { class: `status status-${p.status}`, text: t(`status.${p.status}` as Key) }),
          p.reason ? el("span", { class: "muted", text: ` — ${p.reason}` }) : "",
        ),
        el("p", { class: "text", text: p.text }),
        el("div", { class: "row actions" }, ...buttons),
      );
    }),
  );
}

async function review(
  post: ReviewedPost,
  action: PostAction,
  button: HTMLButtonElement,
): Promise<void> {
  button.disabled = true;
  try {
    const done = await guarded((tok) => api.review(tok, post.id, action));
    if (done !== null) {
      ui.queueMessage.textContent = t("queue.done", { action: t(`action.${action}` as Key) });
      await loadQueue();
    }
  } catch (err) {
    ui.queueMessage.textContent = describe(err);
    button.disabled = false;
  }
}

// --- schedule, prompts, floor, listeners --------------------------------------------------------

async function loadSchedule(): Promise<void> {
  const s = await api.schedule();
  setLanguage(s.language || null);
  setTimeZone(s.timezone);
  applyStrings();
  ui.stationName.textContent = s.station;
  document.title = `${s.station} — ${t("title.studio")}`;
  ui.nowTitle.textContent = s.now.title;
  ui.nowUntil.textContent = t("until", { t: formatTime(s.now.ends) });
  const later = s.today.length ? s.today : [s.next];
  ui.later.replaceChildren(
    ...later
      .filter((seg) => seg.segment !== s.now.segment || seg.starts !== s.now.starts)
      .map((seg) =>
        el(
          "li",
          {},
          el("span", { class: "time", text: formatTime(seg.starts) }),
          el("span", { text: ` ${seg.title}` }),
        ),
      ),
  );
}

async function loadPrompts(): Promise<void> {
  let p: PromptsStatus | null;
  try {
    p = await guarded((tok) => api.promptStatus(tok));
  } catch (err) {
    // 404: the host has not reported on the prompt files yet (it is starting, or down).
    ui.promptsSummary.textContent =
      err instanceof ApiError && err.status === 404 ? t("prompts.unknown") : describe(err);
    ui.promptsSummary.dataset.ok = "unknown";
    show(ui.promptsProblems, false);
    return;
  }
  if (!p) return;
  ui.promptsSummary.textContent = p.ok ? t("prompts.ok") : t("prompts.bad");
  ui.promptsSummary.dataset.ok = String(p.ok);
  ui.promptsProblems.textContent = p.problems.map(printProblem).join("\n");
  show(ui.promptsProblems, p.problems.length > 0);
}

function showListeners(n: number): void {
  show(ui.listeners, true);
  ui.listeners.textContent = t("listeners", { n });
}

function showFloor(f: FloorInfo): void {
  show(ui.floor, true);
  ui.floor.dataset.state = f.state;
  ui.floor.textContent =
    f.state === "held"
      ? t("floor.held", { name: f.holder_name ?? (f.holder ?? "?").slice(0, 8) })
      : t("floor.free");
}

// --- as-aired log -------------------------------------------------------------------------------

function localInput(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function setDefaultAiredRange(): void {
  if (ui.airedFrom.value && ui.airedTo.value) return;
  const now = new Date();
  ui.airedFrom.value = localInput(new Date(now.getTime() - 3600_000));
  ui.airedTo.value = localInput(new Date(now.getTime() + 5 * 60_000));
}

ui.airedForm.addEventListener("submit", (e) => {
  e.preventDefault();
  void loadAired();
});

/** A caller as the log names them: their nickname, else the speaker recorded. */
function who(u: Aired): string {
  return u.person ?? u.speaker;
}

async function loadAired(): Promise<void> {
  const from = new Date(ui.airedFrom.value);
  const to = new Date(ui.airedTo.value);
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) return;
  ui.airedMessage.textContent = "";
  try {
    const rows = await guarded((tok) => api.aired(tok, from.toISOString(), to.toISOString()));
    if (!rows) return;
    if (rows.length === 0) ui.airedMessage.textContent = t("aired.empty");
    ui.aired.replaceChildren(
      ...rows.map((u) =>
        el(
          "li",
          { attrs: { "data-kind": u.kind } },
          el("span", { class: "time", text: formatTime(u.started_at, true) }),
          el("strong", { text: ` ${u.kind === "host" ? t("captions.host") : who(u)} ` }),
          u.segment ? el("span", { class: "muted", text: `[${u.segment}] ` }) : "",
          el("span", { text: u.text }),
          u.interrupted ? el("span", { class: "muted", text: ` (${t("aired.interrupted")})` }) : "",
        ),
      ),
    );
  } catch (err) {
    ui.airedMessage.textContent = describe(err);
  }
}

// --- words --------------------------------------------------------------------------------------

function describe(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 0) return t("error.unreachable");
    return err.message || t("error.generic", { status: err.status });
  }
  return t("error.generic", { status: err instanceof Error ? err.message : String(err) });
}

function showBanner(text: string): void {
  ui.banner.textContent = text;
  show(ui.banner, Boolean(text));
}

// --- start --------------------------------------------------------------------------------------

async function start(): Promise<void> {
  try {
    await loadSchedule();
    showBanner("");
  } catch (err) {
    showBanner(describe(err));
  }
  const stored = loadSession(STUDIO_KEY);
  if (staff(stored)) {
    session = stored;
    open();
    return;
  }
  // A listener who opens the studio with their listener session is told it is for producers.
  const listener = loadSession(LISTENER_KEY);
  if (stored || (listener && !staff(listener))) {
    refuse();
    return;
  }
  showLogin();
}

void start();

// The listener page: join with a nickname, hear the station, call in (push-to-talk), write in.
// This file wires the parts together (listener/*): the connection's state machine and the
// effects it asks for, the room, the sound, push-to-talk, captions, posts and the live events.

import { ApiError, type Session, api, isPostStatus } from "./api";
import { EventStream, LISTENER_KEY, loadSession, saveSession } from "./common";
import type { PageEvent } from "./contract";
import { $, show } from "./dom";
import { applyStrings, setLanguage, setTimeZone, t } from "./i18n";
import { Player } from "./listener/audio";
import { Captions } from "./listener/captions";
import {
  type ConnEvent,
  type ConnState,
  type Effect,
  INITIAL,
  SLOW_SECONDS,
  shown,
  transition,
} from "./listener/connection";
import { StationLink } from "./listener/link";
import { OnAir } from "./listener/onair";
import { WriteIn, describe } from "./listener/posts";
import { PushToTalk, TurnButton } from "./listener/ptt";
import { ConnBadge, Unreachable } from "./listener/status";

const ui = {
  stationName: $("#station-name"),
  conn: $("#conn"),
  listeners: $("#listeners"),
  unreachable: $("#unreachable"),
  nowTitle: $("#now-title"),
  nowUntil: $("#now-until"),
  nextTitle: $("#next-title"),
  playing: $("#playing"),
  playingTitle: $("#playing-title"),
  playingArtist: $("#playing-artist"),
  floorLine: $("#floor-line"),
  join: $("#join"),
  joinForm: $<HTMLFormElement>("#join-form"),
  nickname: $<HTMLInputElement>("#nickname"),
  joinButton: $<HTMLButtonElement>("#join-button"),
  joinError: $("#join-error"),
  player: $("#player"),
  leave: $<HTMLButtonElement>("#leave"),
  level: $<HTMLMeterElement>("#level"),
  mute: $<HTMLButtonElement>("#mute"),
  volume: $<HTMLInputElement>("#volume"),
  startAudio: $<HTMLButtonElement>("#start-audio"),
  call: $("#call"),
  ptt: $<HTMLButtonElement>("#ptt"),
  pttLabel: $("#ptt-label"),
  pttStatus: $("#ptt-status"),
  captionsCard: $("#captions-card"),
  captions: $("#captions"),
  write: $("#write"),
  postForm: $<HTMLFormElement>("#post-form"),
  postText: $<HTMLTextAreaElement>("#post-text"),
  postCounter: $("#post-counter"),
  postSend: $<HTMLButtonElement>("#post-send"),
  postMessage: $("#post-message"),
  myPosts: $("#my-posts"),
};

type Ui = typeof ui;

const POLL_POSTS_MS = 10_000;
const RETRY_SCHEDULE_MS = 5000;

class ListenerPage {
  private session: Session | null = loadSession(LISTENER_KEY);
  private conn: ConnState = INITIAL;
  private events: EventStream | null = null;
  private eventsOpen = false;
  private retryTimer: number | undefined;
  private slowTimer: number | undefined;

  private readonly badge: ConnBadge;
  private readonly unreachable: Unreachable;
  private readonly player: Player;
  private readonly link: StationLink;
  private readonly onAir: OnAir;
  private readonly ptt: PushToTalk;
  private readonly button: TurnButton;
  private readonly captions: Captions;
  private readonly writeIn: WriteIn;

  constructor(private readonly ui: Ui) {
    this.badge = new ConnBadge(ui.conn);
    this.unreachable = new Unreachable(ui.unreachable);
    this.player = new Player(ui.level);
    this.link = new StationLink({
      dispatch: (e) => this.dispatch(e),
      trackAdded: (track) => this.player.add(track),
      trackRemoved: (track) => this.player.remove(track),
      playbackBlocked: (blocked) => show(ui.startAudio, blocked),
      host: (p) => this.onAir.readHost(p.attributes),
      audienceChanged: () => this.onAir.renderAudience(),
      caption: (stream, identity) => void this.captions.read(stream, identity),
    });
    this.onAir = new OnAir(ui, {
      me: () => this.link.myIdentity,
      nameOf: (identity) => this.nameOf(identity),
      inRoom: () => this.link.audience(),
      floorChanged: () => this.ptt.floorChanged(),
    });
    this.ptt = new PushToTalk({
      connected: () => this.conn.phase === "on",
      secure: () => window.isSecureContext && Boolean(navigator.mediaDevices),
      rpc: (method) => this.link.rpc(method),
      openMic: () => this.link.openMic(),
      closeMic: () => this.link.closeMic(),
      floor: () => this.onAir.floor,
      me: () => this.link.myIdentity,
      holderName: (f) => this.onAir.holderName(f),
      now: () => Date.now(),
      sleep: (ms) => new Promise((res) => setTimeout(res, ms)),
      every: (ms, f) => {
        const id = window.setInterval(f, ms);
        return () => window.clearInterval(id);
      },
      after: (ms, f) => void window.setTimeout(f, ms),
      changed: () => this.button.render(),
    });
    this.button = new TurnButton(
      { call: ui.call, ptt: ui.ptt, label: ui.pttLabel, status: ui.pttStatus },
      this.ptt,
    );
    this.captions = new Captions(ui.captions, {
      host: () => this.link.hostIdentity,
      floor: () => this.onAir.floor,
      nameOf: (identity) => this.nameOf(identity),
    });
    this.writeIn = new WriteIn(
      {
        form: ui.postForm,
        text: ui.postText,
        counter: ui.postCounter,
        send: ui.postSend,
        message: ui.postMessage,
        list: ui.myPosts,
      },
      { token: () => this.session?.token ?? null, sessionEnded: () => this.sessionEnded() },
    );
  }

  start(): void {
    const { ui } = this;
    setLanguage(navigator.language);
    applyStrings();
    this.writeIn.renderCounter();
    this.badge.set(shown(this.conn));
    if (this.session) ui.nickname.value = this.session.name;

    ui.joinForm.addEventListener("submit", (e) => {
      e.preventDefault();
      // Inside the click: browsers only let audio start from a user gesture.
      this.player.unlock();
      void this.join();
    });
    ui.leave.addEventListener("click", () => this.dispatch({ type: "leave" }));
    ui.volume.addEventListener("input", () => this.player.setVolume(Number(ui.volume.value)));
    ui.mute.addEventListener("click", () => {
      const muted = !this.player.muted;
      this.player.setMuted(muted);
      ui.mute.setAttribute("aria-pressed", String(muted));
      ui.mute.dataset.i18n = muted ? "player.unmute" : "player.mute";
      ui.mute.textContent = t(muted ? "player.unmute" : "player.mute");
    });
    ui.startAudio.addEventListener("click", () => {
      this.player.unlock();
      void this.link.startAudio().then(() => show(ui.startAudio, this.link.playbackBlocked));
    });

    window.addEventListener("online", () => this.dispatch({ type: "online" }));
    // Leaving the page mid-turn frees the floor: the host sees the participant go.
    window.addEventListener("pagehide", () => this.dispatch({ type: "hide" }));
    // Back from the browser's page cache: tune in again.
    window.addEventListener("pageshow", (e) => {
      if (e.persisted) this.dispatch({ type: "show" });
    });
    // Status changes also arrive by polling while the event socket is down.
    window.setInterval(() => {
      const tuned = this.conn.phase !== "out" && this.conn.phase !== "hidden";
      if (this.session && tuned && !this.eventsOpen && this.writeIn.count > 0) {
        void this.writeIn.refresh();
      }
    }, POLL_POSTS_MS);

    void this.loadSchedule();
  }

  // --- the connection: events in, effects out --------------------------------------------------

  private dispatch(event: ConnEvent): void {
    const step = transition(this.conn, event, Math.random());
    this.conn = step.state;
    this.badge.set(shown(step.state));
    for (const effect of step.effects) this.run(effect);
  }

  private run(effect: Effect): void {
    switch (effect.type) {
      case "connect":
        if (this.session) void this.link.open(effect.run, this.session.token);
        break;
      case "close":
        if (effect.polite) void this.link.close(() => this.ptt.abandon());
        else {
          void this.link.close();
          void this.ptt.abandon();
        }
        this.player.clear();
        break;
      case "silence":
        void this.ptt.abandon();
        this.player.clear();
        break;
      case "tunedIn": {
        const host = this.link.host();
        if (host) this.onAir.readHost(host.attributes);
        this.onAir.renderAudience();
        void this.link
          .startAudio()
          .catch(() => {})
          .then(() => show(this.ui.startAudio, this.link.playbackBlocked));
        break;
      }
      case "retryIn":
        window.clearTimeout(this.retryTimer);
        this.retryTimer = window.setTimeout(
          () => this.dispatch({ type: "retry" }),
          effect.seconds * 1000,
        );
        break;
      case "cancelRetry":
        window.clearTimeout(this.retryTimer);
        break;
      case "watchSlow":
        window.clearTimeout(this.slowTimer);
        this.slowTimer = window.setTimeout(
          () => this.dispatch({ type: "slow" }),
          SLOW_SECONDS * 1000,
        );
        break;
      case "unreachable":
        this.unreachable.say(effect.seconds);
        break;
      case "reachable":
        this.unreachable.hide();
        break;
      case "ended":
        this.ended(effect.why);
        break;
    }
  }

  // --- joining and leaving ----------------------------------------------------------------------

  private async join(): Promise<void> {
    const { ui } = this;
    const nickname = ui.nickname.value.trim();
    ui.joinError.textContent = "";
    if (!nickname) {
      ui.joinError.textContent = t("join.empty");
      ui.nickname.focus();
      return;
    }
    ui.joinButton.disabled = true;
    try {
      if (!this.session || this.session.name !== nickname) {
        this.session = await api.join(nickname);
        saveSession(LISTENER_KEY, this.session);
      }
      show(ui.join, false);
      for (const s of [ui.player, ui.call, ui.captionsCard, ui.write]) show(s, true);
      this.startEvents();
      void this.writeIn.refresh();
      this.dispatch({ type: "join" });
    } catch (err) {
      ui.joinError.textContent = describe(err);
    } finally {
      ui.joinButton.disabled = false;
    }
  }

  /** The join form again; the API's refusal ends the stored session too, and says so. */
  private ended(why: "left" | "session" | "banned"): void {
    const { ui } = this;
    this.events?.close();
    this.events = null;
    for (const s of [ui.player, ui.call, ui.captionsCard, ui.write]) show(s, false);
    show(ui.join, true);
    if (why === "left") return;
    saveSession(LISTENER_KEY, null);
    this.session = null;
    ui.joinError.textContent = t(why === "banned" ? "error.banned" : "error.session");
  }

  private sessionEnded(): void {
    this.dispatch({ type: "leave", why: "session" });
  }

  /** The name shown for a speaker or the floor's holder. */
  private nameOf(identity: string): string {
    if (identity === this.link.hostIdentity) return t("captions.host");
    if (identity === this.link.myIdentity) return this.session?.name ?? identity;
    return this.link.nameOf(identity);
  }

  // --- the programme and the live events --------------------------------------------------------

  private async loadSchedule(): Promise<void> {
    try {
      const s = await api.schedule();
      setLanguage(s.language || null);
      setTimeZone(s.timezone);
      applyStrings();
      this.ui.stationName.textContent = s.station;
      document.title = `${s.station} — ${t("title.listener")}`;
      this.onAir.lineup(s.now, s.next);
      this.renderAll();
      this.unreachable.hide();
    } catch (e) {
      if (e instanceof ApiError && e.status === 0) this.unreachable.say(RETRY_SCHEDULE_MS / 1000);
      window.setTimeout(() => void this.loadSchedule(), RETRY_SCHEDULE_MS);
    }
  }

  private startEvents(): void {
    if (!this.session || this.events) return;
    this.events = new EventStream(
      this.session.token,
      (e) => this.onEvent(e),
      (open) => {
        this.eventsOpen = open;
        if (open) void this.writeIn.refresh();
      },
      () => this.sessionEnded(),
    );
  }

  private onEvent(e: PageEvent): void {
    switch (e.type) {
      case "snapshot":
        this.onAir.lineup(e.segment ?? null, e.next ?? null);
        if (e.floor) this.onAir.setFloor(e.floor);
        // The API's count when it has one; otherwise the room's own count stays.
        if (typeof e.listeners === "number") this.onAir.listeners(e.listeners);
        break;
      case "segment":
        this.onAir.lineup(e.segment, e.next);
        break;
      case "floor":
        this.onAir.setFloor(e.floor);
        break;
      case "listeners":
        this.onAir.listeners(e.count);
        break;
      case "post_status":
        if (isPostStatus(e.status)) this.writeIn.statusChanged(e.post_id, e.status);
        else void this.writeIn.refresh(); // a status this page does not know: ask the API
        break;
      case "now_playing":
        break; // the track comes with the host's attributes in the room
    }
  }

  /** Everything in words again (the station's language arrived). */
  private renderAll(): void {
    this.badge.render();
    this.writeIn.renderCounter();
    this.writeIn.render();
    this.onAir.renderAudience();
    this.button.render();
  }
}

new ListenerPage(ui).start();

// The listener page: join with a nickname, hear the station, call in (push-to-talk), write in.

import {
  ConnectionState,
  DisconnectReason,
  type Participant,
  ParticipantKind,
  type RemoteParticipant,
  type RemoteTrack,
  Room,
  RoomEvent,
  RpcError,
  Track,
} from "livekit-client";
import {
  ATTR_FINAL,
  ATTR_FLOOR,
  ATTR_NOW_PLAYING,
  ATTR_SEGMENT,
  ATTR_SEGMENT_ID,
  ApiError,
  DEFAULT_MAX_TURN_SECONDS,
  type FloorInfo,
  type NowPlaying,
  DEFAULT_HOST_IDENTITY,
  MAX_POST_CHARS,
  type Post,
  type PostStatus,
  RPC,
  type SegmentInfo,
  type Session,
  TOPIC_TRANSCRIPTION,
  api,
  newIdempotencyKey,
  parseNowPlaying,
  parseSegmentAttribute,
  toFloor,
} from "./api";
import { $, EventStream, LISTENER_KEY, el, loadSession, saveSession, show } from "./common";
import { type Key, applyStrings, formatTime, setLanguage, setTimeZone, t } from "./i18n";

type ConnState = "offline" | "connecting" | "connected" | "reconnecting";
type PttState = "idle" | "requesting" | "onair" | "ending" | "busy";

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

let session: Session | null = loadSession(LISTENER_KEY);
let room: Room | null = null;
let events: EventStream | null = null;
let leaving = false;
let rejoinAttempt = 0;
let rejoinTimer: number | undefined;
let listenerCountFromApi: number | null = null;
let floor: FloorInfo = {
  state: "free",
  holder: null,
  holderName: null,
  since: null,
  deadline: null,
  ended: null,
};
let myIdentity = "";
// Learnt from the API with each room token; captions count only from it and the floor holder.
let hostIdentity = DEFAULT_HOST_IDENTITY;

// --- language and the programme -----------------------------------------------------------------

setLanguage(navigator.language);
applyStrings();
renderCounter();
setConn("offline");

async function loadSchedule(): Promise<void> {
  try {
    const s = await api.schedule();
    setLanguage(s.language || null);
    setTimeZone(s.timezone);
    applyStrings();
    ui.stationName.textContent = s.stationName;
    document.title = `${s.stationName} — ${t("title.listener")}`;
    showLineup(s.now, s.next);
    renderAll();
    show(ui.unreachable, false);
  } catch (e) {
    if (e instanceof ApiError && e.status === 0) showUnreachable(5);
    window.setTimeout(loadSchedule, 5000);
  }
}

function showLineup(now: SegmentInfo | null, next: SegmentInfo | null): void {
  if (now) {
    ui.nowTitle.textContent = now.title;
    ui.nowUntil.textContent = now.ends ? t("until", { t: formatTime(now.ends) }) : "";
  }
  if (next) {
    ui.nextTitle.textContent = next.starts ? `${formatTime(next.starts)} ${next.title}` : next.title;
  }
}

/** The track on air, next to the segment (text only: titles and artists come from files). */
function showPlaying(playing: NowPlaying | null): void {
  show(ui.playing, playing !== null);
  ui.playingTitle.textContent = playing?.title ?? "";
  ui.playingArtist.textContent = playing?.artist ? t("playing.by", { artist: playing.artist }) : "";
}

// --- connection state ---------------------------------------------------------------------------

let connState: ConnState = "offline";

function setConn(state: ConnState): void {
  connState = state;
  ui.conn.dataset.state = state;
  ui.conn.textContent = t(`conn.${state}` as Key);
  document.body.dataset.conn = state;
}

let unreachableTimer: number | undefined;

/** The outage in words; with `seconds`, a countdown to the next try. */
function showUnreachable(seconds: number | null): void {
  window.clearInterval(unreachableTimer);
  window.clearTimeout(slowReconnect);
  if (seconds === null) {
    ui.unreachable.textContent = t("conn.unreachableRetrying");
    show(ui.unreachable, true);
    return;
  }
  let left = Math.max(1, Math.round(seconds));
  const paint = () => {
    ui.unreachable.textContent = t("conn.unreachable", { s: left });
  };
  paint();
  show(ui.unreachable, true);
  unreachableTimer = window.setInterval(() => {
    left = Math.max(0, left - 1);
    paint();
    if (left === 0) window.clearInterval(unreachableTimer);
  }, 1000);
}

function hideUnreachable(): void {
  window.clearInterval(unreachableTimer);
  window.clearTimeout(slowReconnect);
  show(ui.unreachable, false);
}

// LiveKit's own reconnect can take a while: after a few seconds, say so in words.
let slowReconnect: number | undefined;

function reconnecting(): void {
  setConn("reconnecting");
  window.clearTimeout(slowReconnect);
  slowReconnect = window.setTimeout(() => {
    if (connState === "reconnecting") showUnreachable(null);
  }, 5000);
}

// --- joining and leaving ------------------------------------------------------------------------

if (session) ui.nickname.value = session.name;

ui.joinForm.addEventListener("submit", (e) => {
  e.preventDefault();
  // Inside the click: browsers only let audio start from a user gesture.
  audio.unlock();
  void join();
});

async function join(): Promise<void> {
  const nickname = ui.nickname.value.trim();
  ui.joinError.textContent = "";
  if (!nickname) {
    ui.joinError.textContent = t("join.empty");
    ui.nickname.focus();
    return;
  }
  ui.joinButton.disabled = true;
  try {
    if (!session || session.name !== nickname) {
      session = await api.join(nickname);
      saveSession(LISTENER_KEY, session);
    }
    leaving = false;
    show(ui.join, false);
    for (const s of [ui.player, ui.call, ui.captionsCard, ui.write]) show(s, true);
    startEvents();
    void refreshMyPosts();
    await connect();
  } catch (err) {
    ui.joinError.textContent = describe(err);
  } finally {
    ui.joinButton.disabled = false;
  }
}

async function connect(): Promise<void> {
  if (!session || leaving) return;
  window.clearTimeout(rejoinTimer);
  setConn(rejoinAttempt > 0 ? "reconnecting" : "connecting");
  try {
    // A fresh room token for every join: it expires within minutes and cannot be revoked.
    const grant = await api.livekitToken(session.token);
    myIdentity = grant.identity;
    hostIdentity = grant.hostIdentity;
    const r = newRoom();
    room = r;
    await r.connect(grant.url, grant.token, { autoSubscribe: true });
    if (leaving) {
      await r.disconnect();
      return;
    }
    rejoinAttempt = 0;
    hideUnreachable();
    setConn("connected");
    readHost(r.remoteParticipants.get(hostIdentity));
    updateListenerCount();
    await r.startAudio().catch(() => {});
    show(ui.startAudio, !r.canPlaybackAudio);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      sessionEnded();
      return;
    }
    if (err instanceof ApiError && err.status === 403) {
      banned(); // asking again would only be refused again
      return;
    }
    scheduleRejoin();
  }
}

function scheduleRejoin(): void {
  if (leaving || !session) return;
  room = null;
  setConn("reconnecting");
  const seconds = Math.min(30, 2 ** rejoinAttempt) * (0.75 + Math.random() / 2);
  rejoinAttempt++;
  if (rejoinAttempt >= 2) showUnreachable(seconds);
  window.clearTimeout(rejoinTimer);
  rejoinTimer = window.setTimeout(() => void connect(), seconds * 1000);
}

window.addEventListener("online", () => {
  if (session && !leaving && connState !== "connected") void connect();
});

async function leave(): Promise<void> {
  leaving = true;
  window.clearTimeout(rejoinTimer);
  hideUnreachable();
  await ptt.abandon();
  events?.close();
  events = null;
  const r = room;
  room = null;
  await r?.disconnect();
  audio.clear();
  setConn("offline");
  for (const s of [ui.player, ui.call, ui.captionsCard, ui.write]) show(s, false);
  show(ui.join, true);
}

ui.leave.addEventListener("click", () => void leave());

function banned(): void {
  saveSession(LISTENER_KEY, null);
  session = null;
  void leave().then(() => {
    ui.joinError.textContent = t("error.banned");
  });
}

function sessionEnded(): void {
  saveSession(LISTENER_KEY, null);
  session = null;
  void leave().then(() => {
    ui.joinError.textContent = t("error.session");
  });
}

// Leaving the page mid-turn frees the floor: the host sees the participant go.
window.addEventListener("pagehide", () => {
  leaving = true;
  void room?.disconnect();
});
// Back from the browser's page cache: tune in again.
window.addEventListener("pageshow", (e) => {
  if (e.persisted && session && !ui.player.hidden) {
    leaving = false;
    void connect();
  }
});

// --- the room -----------------------------------------------------------------------------------

function newRoom(): Room {
  const r = new Room({ adaptiveStream: false, dynacast: false, disconnectOnPageLeave: true });
  r.on(RoomEvent.TrackSubscribed, (track: RemoteTrack) => {
    if (track.kind === Track.Kind.Audio) audio.add(track);
  });
  r.on(RoomEvent.TrackUnsubscribed, (track: RemoteTrack) => audio.remove(track));
  r.on(RoomEvent.AudioPlaybackStatusChanged, () => show(ui.startAudio, !r.canPlaybackAudio));
  r.on(RoomEvent.ParticipantConnected, (p: RemoteParticipant) => {
    if (p.identity === hostIdentity) readHost(p);
    updateListenerCount();
  });
  r.on(RoomEvent.ParticipantDisconnected, () => updateListenerCount());
  r.on(RoomEvent.ParticipantAttributesChanged, (_changed: Record<string, string>, p: Participant) => {
    if (p.identity === hostIdentity) readHost(p);
  });
  r.on(RoomEvent.Reconnecting, reconnecting);
  r.on(RoomEvent.SignalReconnecting, reconnecting);
  r.on(RoomEvent.Reconnected, () => {
    setConn("connected");
    hideUnreachable();
  });
  r.on(RoomEvent.Disconnected, (reason?: DisconnectReason) => {
    if (room !== r) return;
    void ptt.abandon();
    audio.clear();
    if (leaving || reason === DisconnectReason.CLIENT_INITIATED) {
      setConn("offline");
      return;
    }
    scheduleRejoin();
  });
  r.registerTextStreamHandler(TOPIC_TRANSCRIPTION, (reader, from) => {
    void captions.read(reader, from.identity);
  });
  return r;
}

function readHost(p: Participant | undefined): void {
  if (!p) return;
  const seg = parseSegmentAttribute(p.attributes[ATTR_SEGMENT]);
  showLineup(seg.now, seg.next);
  showPlaying(parseNowPlaying(p.attributes[ATTR_NOW_PLAYING]));
  const raw = p.attributes[ATTR_FLOOR];
  if (raw) setFloor(toFloor(raw));
}

function updateListenerCount(): void {
  let n = listenerCountFromApi;
  if (n === null && room) {
    n = 1;
    for (const p of room.remoteParticipants.values()) if (p.kind !== ParticipantKind.AGENT) n++;
  }
  show(ui.listeners, n !== null);
  if (n !== null) ui.listeners.textContent = t("listeners", { n });
}

function displayName(identity: string): string {
  if (identity === hostIdentity) return t("captions.host");
  if (identity === myIdentity) return session?.name ?? identity;
  return room?.getParticipantByIdentity(identity)?.name || identity;
}

// --- sound: playback, volume, level meter -------------------------------------------------------

const audio = (() => {
  let ctx: AudioContext | null = null;
  let analyser: AnalyserNode | null = null;
  const tracks = new Map<string, { el: HTMLMediaElement; src: MediaStreamAudioSourceNode | null }>();
  let volume = 1;
  let muted = false;
  let level = 0;
  const buf = new Float32Array(2048);

  function unlock(): void {
    if (!ctx) {
      ctx = new AudioContext();
      analyser = ctx.createAnalyser();
      analyser.fftSize = 2048;
    }
    void ctx.resume();
  }

  function add(track: RemoteTrack): void {
    const elm = track.attach();
    elm.volume = volume;
    elm.muted = muted;
    elm.hidden = true;
    document.body.append(elm);
    let src: MediaStreamAudioSourceNode | null = null;
    if (ctx && analyser) {
      // The meter listens to what arrives, before volume and mute: it shows the station is on.
      src = ctx.createMediaStreamSource(new MediaStream([track.mediaStreamTrack]));
      src.connect(analyser);
    }
    tracks.set(track.sid ?? String(tracks.size), { el: elm, src });
  }

  function remove(track: RemoteTrack): void {
    const key = track.sid ?? "";
    const entry = tracks.get(key);
    if (!entry) return;
    track.detach(entry.el);
    entry.el.remove();
    entry.src?.disconnect();
    tracks.delete(key);
  }

  function clear(): void {
    for (const entry of tracks.values()) {
      entry.el.remove();
      entry.src?.disconnect();
    }
    tracks.clear();
  }

  function setVolume(v: number): void {
    volume = v;
    for (const { el: e } of tracks.values()) e.volume = v;
  }

  function setMuted(m: boolean): void {
    muted = m;
    for (const { el: e } of tracks.values()) e.muted = m;
  }

  // A timer, not requestAnimationFrame: the meter keeps moving in a background tab.
  window.setInterval(() => {
    let rms = 0;
    if (analyser && tracks.size > 0) {
      analyser.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const x of buf) sum += x * x;
      rms = Math.sqrt(sum / buf.length);
    }
    const target = Math.min(1, rms * 4);
    level = target > level ? target : level * 0.85 + target * 0.15;
    ui.level.value = level < 0.001 ? 0 : level;
    ui.level.dataset.level = level.toFixed(3);
  }, 80);

  return { unlock, add, remove, clear, setVolume, setMuted, get muted() { return muted; } };
})();

ui.volume.addEventListener("input", () => audio.setVolume(Number(ui.volume.value)));
ui.mute.addEventListener("click", () => {
  audio.setMuted(!audio.muted);
  ui.mute.setAttribute("aria-pressed", String(audio.muted));
  ui.mute.dataset.i18n = audio.muted ? "player.unmute" : "player.mute";
  ui.mute.textContent = t(audio.muted ? "player.unmute" : "player.mute");
});
ui.startAudio.addEventListener("click", () => {
  audio.unlock();
  void room?.startAudio().then(() => show(ui.startAudio, !room?.canPlaybackAudio));
});

// --- push-to-talk -------------------------------------------------------------------------------

// The host names the holder (their nickname); older hosts sent only the identity.
function holderName(f: FloorInfo): string {
  return f.holderName || displayName(f.holder ?? "");
}

function setFloor(f: FloorInfo): void {
  floor = f;
  const held = f.state === "held" && f.holder !== null;
  ui.floorLine.textContent = held ? t("ptt.busyWho", { name: holderName(f) }) : "";
  show(ui.floorLine, held && f.holder !== myIdentity);
  ptt.floorChanged();
}

const ptt = (() => {
  let state: PttState = "idle";
  let wantHeld = false; // the button / Space is down
  let deadline = 0; // epoch ms, local clock
  let ticker: number | undefined;
  let message = "";

  function render(): void {
    const busy = state === "idle" && floor.state === "held" && floor.holder !== myIdentity;
    const shown: PttState = busy ? "busy" : state;
    ui.ptt.dataset.state = shown;
    ui.ptt.setAttribute("aria-pressed", String(state === "onair"));
    let label: string;
    switch (shown) {
      case "requesting":
        label = t("ptt.requesting");
        break;
      case "onair":
        label = t("ptt.onair", { s: Math.max(0, Math.ceil((deadline - Date.now()) / 1000)) });
        break;
      case "ending":
        label = t("ptt.ending");
        break;
      case "busy":
        label = floor.holder ? t("ptt.busyWho", { name: holderName(floor) }) : t("ptt.busy");
        break;
      default:
        label = t("ptt.idle");
    }
    ui.pttLabel.textContent = label;
    ui.pttStatus.textContent = message;
  }

  function set(next: PttState, msg?: string): void {
    state = next;
    if (msg !== undefined) message = msg;
    window.clearInterval(ticker);
    if (next === "onair") ticker = window.setInterval(tick, 250);
    render();
  }

  function tick(): void {
    if (state === "onair" && Date.now() >= deadline) {
      void release(t("ptt.timeout"));
      return;
    }
    render();
  }

  async function rpc(method: string): Promise<string> {
    if (!room) throw new Error("not connected");
    return room.localParticipant.performRpc({
      destinationIdentity: hostIdentity,
      method,
      payload: "",
      responseTimeout: 10_000,
    });
  }

  async function waitForPublish(r: Room, ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (r.localParticipant.permissions?.canPublish) return true;
      await new Promise((res) => setTimeout(res, 50));
    }
    return Boolean(r.localParticipant.permissions?.canPublish);
  }

  async function stopMic(): Promise<void> {
    const r = room;
    if (!r) return;
    const pub = r.localParticipant.getTrackPublication(Track.Source.Microphone);
    if (pub?.track) await r.localParticipant.unpublishTrack(pub.track, true).catch(() => {});
  }

  async function press(): Promise<void> {
    wantHeld = true;
    if (state !== "idle" && state !== "busy") return;
    if (!room || connState !== "connected") {
      set("idle", t("ptt.notConnected"));
      return;
    }
    if (!window.isSecureContext || !navigator.mediaDevices) {
      set("idle", t("ptt.insecure"));
      return;
    }
    const r = room;
    set("requesting", "");
    let maxSeconds = DEFAULT_MAX_TURN_SECONDS;
    try {
      const reply = JSON.parse((await rpc(RPC.start)) || "{}") as { max_seconds?: number };
      if (typeof reply.max_seconds === "number") maxSeconds = reply.max_seconds;
    } catch (err) {
      set("idle", rpcMessage(err));
      if (isBusy(err)) {
        state = "busy";
        render();
        window.setTimeout(() => state === "busy" && set("idle"), 3000);
      }
      return;
    }
    deadline = Date.now() + maxSeconds * 1000;
    try {
      if (!(await waitForPublish(r, 5000))) throw new Error("no-permission");
      await r.localParticipant.setMicrophoneEnabled(true, {
        echoCancellation: true,
        noiseSuppression: true,
        autoGainControl: true,
      });
    } catch (err) {
      const msg =
        err instanceof Error && err.message === "no-permission"
          ? t("ptt.noPermission")
          : t("ptt.noMic");
      await rpc(RPC.cancel).catch(() => {});
      await stopMic();
      set("idle", msg);
      return;
    }
    set("onair", "");
    if (!wantHeld) await release(); // let go while we were asking
  }

  async function release(msg?: string): Promise<void> {
    wantHeld = false;
    if (state !== "onair") return;
    set("ending", "");
    // Keep the microphone open a moment: the last syllable is still on its way to the host.
    await new Promise((res) => setTimeout(res, 200));
    let reply: { status?: string } = {};
    try {
      reply = JSON.parse((await rpc(RPC.end)) || "{}") as { status?: string };
    } catch (err) {
      if (!(err instanceof RpcError && /not hold/i.test(err.message))) msg ??= rpcMessage(err);
    }
    await stopMic();
    const said =
      msg ?? (reply.status === "no_speech" ? t("ptt.noSpeech") : t("ptt.sent"));
    set("idle", said);
  }

  /** The connection went or the listener left: drop the turn without asking the host. */
  async function abandon(): Promise<void> {
    wantHeld = false;
    if (state === "onair" || state === "requesting") {
      await rpc(RPC.cancel).catch(() => {});
      await stopMic();
    }
    set("idle");
  }

  function floorChanged(): void {
    // The host cut the turn (nothing heard, maximum length, or the studio): no longer ours.
    if (state === "onair" && (floor.state !== "held" || floor.holder !== myIdentity)) {
      wantHeld = false;
      void stopMic();
      const how = floor.ended?.holder === myIdentity ? floor.ended.how : "";
      const timedOut = how === "timed_out" || (!how && Date.now() >= deadline - 1500);
      set(
        "idle",
        how === "quiet" ? t("ptt.noSpeech") : timedOut ? t("ptt.timeout") : t("ptt.cut"),
      );
      return;
    }
    render();
  }

  return {
    press,
    release: () => release(),
    abandon,
    floorChanged,
    render,
    get active() {
      return state !== "idle" && state !== "busy";
    },
  };
})();

function isBusy(err: unknown): boolean {
  if (!(err instanceof RpcError)) return false;
  return /"code"\s*:\s*"busy"/.test(err.data ?? "") || /busy/i.test(err.message);
}

function rpcMessage(err: unknown): string {
  if (isBusy(err)) {
    return floor.holder ? t("ptt.busyWho", { name: holderName(floor) }) : t("ptt.busy");
  }
  if (err instanceof RpcError) {
    const c = RpcError.ErrorCode;
    if (
      err.code === c.RECIPIENT_NOT_FOUND ||
      err.code === c.RECIPIENT_DISCONNECTED ||
      err.code === c.UNSUPPORTED_METHOD ||
      err.code === c.RESPONSE_TIMEOUT ||
      err.code === c.CONNECTION_TIMEOUT
    ) {
      return t("ptt.noHost");
    }
    return t("ptt.failed", { msg: err.message });
  }
  return t("ptt.failed", { msg: err instanceof Error ? err.message : String(err) });
}

ui.ptt.addEventListener("pointerdown", (e) => {
  if (e.button !== 0) return;
  ui.ptt.setPointerCapture(e.pointerId);
  e.preventDefault();
  void ptt.press();
});
for (const type of ["pointerup", "pointercancel", "lostpointercapture"] as const) {
  ui.ptt.addEventListener(type, () => void ptt.release());
}
ui.ptt.addEventListener("contextmenu", (e) => e.preventDefault());
// Space anywhere but in a text field; Enter/Space on the focused button also land here.
function typing(target: EventTarget | null): boolean {
  return target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement;
}
document.addEventListener("keydown", (e) => {
  if (e.code !== "Space" || typing(e.target) || ui.call.hidden) return;
  e.preventDefault();
  if (!e.repeat) void ptt.press();
});
document.addEventListener("keyup", (e) => {
  if (e.code !== "Space" || typing(e.target) || ui.call.hidden) return;
  e.preventDefault();
  void ptt.release();
});
window.addEventListener("blur", () => {
  if (ptt.active) void ptt.release();
});

// --- live captions ------------------------------------------------------------------------------

const captions = (() => {
  const MAX = 60;
  const lines = new Map<string, HTMLLIElement>();

  /** Only the host speaks in captions, and the caller who holds the floor: any listener may
   * send data (RPC needs it), so a stream from anyone else is not read at all. */
  function trusted(identity: string): boolean {
    return identity === hostIdentity || (floor.state === "held" && floor.holder === identity);
  }

  async function read(
    reader: AsyncIterable<string> & { info: { attributes?: Record<string, string> } },
    identity: string,
  ): Promise<void> {
    if (!trusted(identity)) return;
    const attrs = reader.info.attributes ?? {};
    // Keyed by sender and segment: a caller reusing the host's segment id gets a line of
    // their own and never rewrites the host's.
    const id = `${identity}\u0000${attrs[ATTR_SEGMENT_ID] ?? Date.now()}`;
    let text = "";
    const line = lineFor(id, identity);
    for await (const chunk of reader) {
      // Delta streams send pieces of one segment; others resend the whole segment each time.
      text += chunk;
      setText(line, text);
    }
    if (attrs[ATTR_FINAL] === "true") line.dataset.final = "true";
  }

  function lineFor(id: string, identity: string): HTMLLIElement {
    let line = lines.get(id);
    if (line) return line;
    ui.captions.querySelector(".empty")?.remove();
    line = el(
      "li",
      { attrs: { "data-speaker": identity === hostIdentity ? "host" : "caller" } },
      el("span", { class: "who", text: `${displayName(identity)}: ` }),
      el("span", { class: "said" }),
    );
    lines.set(id, line);
    ui.captions.append(line);
    while (lines.size > MAX) {
      const [oldest] = lines.keys();
      if (oldest === undefined) break;
      lines.get(oldest)?.remove();
      lines.delete(oldest);
    }
    return line;
  }

  function setText(line: HTMLLIElement, text: string): void {
    const said = line.querySelector(".said");
    if (said) said.textContent = text;
    ui.captions.scrollTop = ui.captions.scrollHeight;
  }

  return { read };
})();

// --- write-in -----------------------------------------------------------------------------------

const myPosts = new Map<string, Post>();
let pendingKey: { text: string; key: string } | null = null;

function renderCounter(): void {
  const n = [...ui.postText.value.trim()].length;
  ui.postCounter.textContent = t("post.counter", { n, max: MAX_POST_CHARS });
  ui.postCounter.dataset.over = String(n > MAX_POST_CHARS);
}

ui.postText.addEventListener("input", renderCounter);

ui.postForm.addEventListener("submit", (e) => {
  e.preventDefault();
  void send();
});

async function send(): Promise<void> {
  if (!session) return;
  const text = ui.postText.value.trim();
  if (!text) {
    postMessage(t("post.empty"), "error");
    return;
  }
  // The same text retried keeps its key, so a retry after a lost answer is not a second post.
  if (pendingKey?.text !== text) pendingKey = { text, key: newIdempotencyKey() };
  ui.postSend.disabled = true;
  postMessage(t("post.sending"), "info");
  try {
    const post = await api.post(session.token, text, pendingKey.key);
    pendingKey = null;
    upsertPost(post);
    if (post.status === "rejected") {
      postMessage(
        post.reason ? t("post.rejected", { msg: post.reason }) : t("post.rejectedNoReason"),
        "error",
      );
    } else {
      postMessage(t("post.sent"), "ok");
      ui.postText.value = "";
      renderCounter();
    }
  } catch (err) {
    postMessage(describePostError(err, text), "error");
  } finally {
    ui.postSend.disabled = false;
  }
}

function describePostError(err: unknown, text: string): string {
  if (!(err instanceof ApiError)) return describe(err);
  const n = [...text].length;
  switch (err.status) {
    case 422:
      if (n > MAX_POST_CHARS) return t("post.tooLong", { n, max: MAX_POST_CHARS });
      return t("post.invalid", { msg: err.message || String(err.status) });
    case 429:
      pendingKey = null;
      return err.retryAfter !== null
        ? t("post.rateLimited", { s: err.retryAfter })
        : t("post.rateLimitedNoTime");
    case 400:
    case 403:
    case 409:
      return err.message ? t("post.rejected", { msg: err.message }) : t("post.rejectedNoReason");
    default:
      return describe(err);
  }
}

function postMessage(text: string, kind: "ok" | "error" | "info"): void {
  ui.postMessage.textContent = text;
  ui.postMessage.dataset.kind = kind;
}

function upsertPost(post: Post): void {
  const old = myPosts.get(post.id);
  myPosts.set(post.id, { ...old, ...post, text: post.text || old?.text || "" });
  renderPosts();
}

function setPostStatus(id: string, status: PostStatus, reason: string | null): void {
  const old = myPosts.get(id);
  if (!old) {
    void refreshMyPosts();
    return;
  }
  myPosts.set(id, { ...old, status, reason: reason ?? old.reason });
  renderPosts();
}

function renderPosts(): void {
  const items = [...myPosts.values()].sort((a, b) =>
    (b.createdAt ?? "").localeCompare(a.createdAt ?? ""),
  );
  ui.myPosts.replaceChildren(
    ...items.slice(0, 20).map((p) =>
      el(
        "li",
        { attrs: { "data-id": p.id, "data-status": p.status } },
        el("span", { class: "text", text: p.text }),
        el("span", {
          class: `status status-${p.status}`,
          text: t(`status.${p.status}` as Key) + (p.reason && p.status === "rejected" ? ` (${p.reason})` : ""),
        }),
      ),
    ),
  );
}

async function refreshMyPosts(): Promise<void> {
  if (!session) return;
  try {
    for (const p of await api.myPosts(session.token)) upsertPost(p);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) sessionEnded();
  }
}

// --- live events --------------------------------------------------------------------------------

let eventsOpen = false;

function startEvents(): void {
  if (!session || events) return;
  events = new EventStream(
    session.token,
    (e) => {
      switch (e.type) {
        case "snapshot":
          showLineup(e.now, e.next);
          if (e.floor) setFloor(e.floor);
          if (e.listeners !== null) {
            listenerCountFromApi = e.listeners;
            updateListenerCount();
          }
          break;
        case "segment":
          showLineup(e.now, e.next);
          break;
        case "floor":
          setFloor(e.floor);
          break;
        case "listeners":
          listenerCountFromApi = e.count;
          updateListenerCount();
          break;
        case "post_status":
          setPostStatus(e.id, e.status, e.reason);
          break;
      }
    },
    (open) => {
      eventsOpen = open;
      if (open) void refreshMyPosts();
    },
    () => sessionEnded(),
  );
}

// Status changes also arrive by polling while the event socket is down.
window.setInterval(() => {
  if (session && !leaving && !eventsOpen && myPosts.size > 0) void refreshMyPosts();
}, 10_000);

// --- words --------------------------------------------------------------------------------------

function describe(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 0) return t("error.unreachable");
    if (err.status === 401) return t("error.session");
    return err.message || t("error.generic", { status: err.status });
  }
  return t("error.generic", { status: err instanceof Error ? err.message : String(err) });
}

function renderAll(): void {
  setConn(connState);
  renderCounter();
  renderPosts();
  updateListenerCount();
  ptt.render();
}

void loadSchedule();

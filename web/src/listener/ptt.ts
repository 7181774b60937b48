// Push-to-talk: hold the button (or Space) to ask the host for the floor, talk while it is
// yours, let go to hand the turn to the host. `PushToTalk` is the logic, with the room, the
// microphone and the clock passed in (link.ts gives the real ones, the tests fakes); `TurnButton`
// paints it and takes the pointer and the keyboard.

import {
  DEFAULT_MAX_TURN_SECONDS,
  type FloorInfo,
  RPC_CANCEL_TURN,
  RPC_END_TURN,
  RPC_START_TURN,
} from "../contract";
import { type Say, words } from "../i18n";

export type TurnState = "idle" | "requesting" | "onair" | "ending" | "busy";

/** A room call that failed: `busy` (someone else has the floor), `noHost` (nobody answers),
 * `notHolding` (the host says the turn is not ours: already over), or `failed`. */
export class TurnError extends Error {
  constructor(
    readonly kind: "busy" | "noHost" | "notHolding" | "failed",
    message: string,
  ) {
    super(message);
  }
}

/** The microphone did not open: not allowed to publish in time, or no usable microphone. */
export class MicError extends Error {
  constructor(readonly kind: "noPermission" | "noMic") {
    super(kind);
  }
}

export interface TurnDeps {
  connected(): boolean; // in the room
  secure(): boolean; // a secure context with media devices: the microphone can open
  rpc(method: string): Promise<string>; // a call to the host; throws TurnError
  openMic(): Promise<void>; // throws MicError
  closeMic(): Promise<void>;
  floor(): FloorInfo;
  me(): string; // this listener's identity
  holderName(floor: FloorInfo): string; // the name to show for the floor's holder
  now(): number; // epoch ms
  sleep(ms: number): Promise<void>;
  every(ms: number, f: () => void): () => void; // a ticker; returns its stop
  after(ms: number, f: () => void): void;
  changed(): void; // the view changed: paint it
}

export interface TurnView {
  state: TurnState; // what the button shows (`busy` also while someone else holds the floor)
  pressed: boolean; // on air
  label: Say;
  status: Say | null; // the last outcome, in words
}

export const TICK_MS = 250;
export const TAIL_MS = 200; // the microphone stays open this long after the release
export const BUSY_MS = 3000; // a refused press shows busy this long
export const TIMEOUT_SLACK_MS = 1500; // a cut this close to the deadline is the time running out

/** Why the host took a turn away, from the floor it published. */
export function cutReason(floor: FloorInfo, me: string, now: number, deadline: number): Say {
  const how = floor.ended?.holder === me ? floor.ended.how : "";
  if (how === "quiet") return { key: "ptt.noSpeech" };
  const timedOut = how === "timed_out" || (!how && now >= deadline - TIMEOUT_SLACK_MS);
  return { key: timedOut ? "ptt.timeout" : "ptt.cut" };
}

export class PushToTalk {
  private state: TurnState = "idle";
  private wantHeld = false; // the button / Space is down
  private deadline = 0; // epoch ms, local clock
  private message: Say | null = null;
  private stopTicker: (() => void) | null = null;

  constructor(private readonly d: TurnDeps) {}

  /** A turn is being asked for, held or handed over. */
  get active(): boolean {
    return this.state !== "idle" && this.state !== "busy";
  }

  view(): TurnView {
    const floor = this.d.floor();
    const taken = floor.state === "held" && floor.holder !== this.d.me();
    const state: TurnState = this.state === "idle" && taken ? "busy" : this.state;
    let label: Say;
    switch (state) {
      case "requesting":
        label = { key: "ptt.requesting" };
        break;
      case "onair":
        label = {
          key: "ptt.onair",
          vars: { s: Math.max(0, Math.ceil((this.deadline - this.d.now()) / 1000)) },
        };
        break;
      case "ending":
        label = { key: "ptt.ending" };
        break;
      case "busy":
        label = this.busy(floor);
        break;
      default:
        label = { key: "ptt.idle" };
    }
    return { state, pressed: this.state === "onair", label, status: this.message };
  }

  private busy(floor: FloorInfo): Say {
    return floor.holder
      ? { key: "ptt.busyWho", vars: { name: this.d.holderName(floor) } }
      : { key: "ptt.busy" };
  }

  /** A failed room call in words. */
  private failure(err: unknown): Say {
    if (err instanceof TurnError) {
      if (err.kind === "busy") return this.busy(this.d.floor());
      if (err.kind === "noHost") return { key: "ptt.noHost" };
    }
    return { key: "ptt.failed", vars: { msg: err instanceof Error ? err.message : String(err) } };
  }

  /** `say`: the new outcome; null clears it; undefined keeps it. */
  private set(next: TurnState, say?: Say | null): void {
    this.state = next;
    if (say !== undefined) this.message = say;
    this.stopTicker?.();
    this.stopTicker = next === "onair" ? this.d.every(TICK_MS, () => this.tick()) : null;
    this.d.changed();
  }

  private tick(): void {
    if (this.state === "onair" && this.d.now() >= this.deadline) {
      void this.release({ key: "ptt.timeout" });
      return;
    }
    this.d.changed();
  }

  async press(): Promise<void> {
    this.wantHeld = true;
    if (this.active) return;
    if (!this.d.connected()) return this.set("idle", { key: "ptt.notConnected" });
    if (!this.d.secure()) return this.set("idle", { key: "ptt.insecure" });
    this.set("requesting", null);
    let maxSeconds = DEFAULT_MAX_TURN_SECONDS;
    try {
      const reply = JSON.parse((await this.d.rpc(RPC_START_TURN)) || "{}") as {
        max_seconds?: unknown;
      };
      if (typeof reply.max_seconds === "number") maxSeconds = reply.max_seconds;
    } catch (err) {
      this.set("idle", this.failure(err));
      if (err instanceof TurnError && err.kind === "busy") {
        this.set("busy");
        this.d.after(BUSY_MS, () => this.state === "busy" && this.set("idle"));
      }
      return;
    }
    this.deadline = this.d.now() + maxSeconds * 1000;
    try {
      await this.d.openMic();
    } catch (err) {
      await this.d.rpc(RPC_CANCEL_TURN).catch(() => {});
      await this.d.closeMic();
      const noPermission = err instanceof MicError && err.kind === "noPermission";
      return this.set("idle", { key: noPermission ? "ptt.noPermission" : "ptt.noMic" });
    }
    this.set("onair", null);
    if (!this.wantHeld) await this.release(); // let go while we were asking
  }

  async release(say?: Say): Promise<void> {
    this.wantHeld = false;
    if (this.state !== "onair") return;
    this.set("ending", null);
    // Keep the microphone open a moment: the last syllable is still on its way to the host.
    await this.d.sleep(TAIL_MS);
    let reply: { status?: unknown } = {};
    try {
      reply = JSON.parse((await this.d.rpc(RPC_END_TURN)) || "{}") as { status?: unknown };
    } catch (err) {
      if (!(err instanceof TurnError && err.kind === "notHolding")) say ??= this.failure(err);
    }
    await this.d.closeMic();
    this.set("idle", say ?? { key: reply.status === "no_speech" ? "ptt.noSpeech" : "ptt.sent" });
  }

  /** The connection went or the listener left: drop the turn without waiting for the host. */
  async abandon(): Promise<void> {
    this.wantHeld = false;
    if (this.state === "onair" || this.state === "requesting") {
      await this.d.rpc(RPC_CANCEL_TURN).catch(() => {});
      await this.d.closeMic();
    }
    this.set("idle");
  }

  /** The host published a new floor: a turn that is no longer ours is over. */
  floorChanged(): void {
    const floor = this.d.floor();
    const me = this.d.me();
    if (this.state === "onair" && (floor.state !== "held" || floor.holder !== me)) {
      this.wantHeld = false;
      void this.d.closeMic();
      return this.set("idle", cutReason(floor, me, this.d.now(), this.deadline));
    }
    this.d.changed();
  }
}

// --- the button ---------------------------------------------------------------------------------

/** Space anywhere but in a text field; Enter/Space on the focused button also land here. */
function typing(target: EventTarget | null): boolean {
  return target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement;
}

export class TurnButton {
  constructor(
    private readonly ui: {
      call: HTMLElement;
      ptt: HTMLButtonElement;
      label: HTMLElement;
      status: HTMLElement;
    },
    private readonly ptt: PushToTalk,
  ) {
    const { ptt: button, call } = ui;
    button.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      button.setPointerCapture(e.pointerId);
      e.preventDefault();
      void ptt.press();
    });
    for (const type of ["pointerup", "pointercancel", "lostpointercapture"] as const) {
      button.addEventListener(type, () => void ptt.release());
    }
    button.addEventListener("contextmenu", (e) => e.preventDefault());
    document.addEventListener("keydown", (e) => {
      if (e.code !== "Space" || typing(e.target) || call.hidden) return;
      e.preventDefault();
      if (!e.repeat) void ptt.press();
    });
    document.addEventListener("keyup", (e) => {
      if (e.code !== "Space" || typing(e.target) || call.hidden) return;
      e.preventDefault();
      void ptt.release();
    });
    window.addEventListener("blur", () => {
      if (ptt.active) void ptt.release();
    });
  }

  render(): void {
    const v = this.ptt.view();
    this.ui.ptt.dataset.state = v.state;
    this.ui.ptt.setAttribute("aria-pressed", String(v.pressed));
    this.ui.label.textContent = words(v.label);
    this.ui.status.textContent = v.status ? words(v.status) : "";
  }
}

// What is on air, as the listener page shows it: the segment and the next one, the track
// playing, who holds the floor, and how many listen. From the host's attributes in the room and
// from the API's live events, whichever speaks last.

import {
  ATTR_FLOOR,
  ATTR_NOW_PLAYING,
  ATTR_SEGMENT,
  type FloorInfo,
  type NowPlaying,
} from "../contract";
import { show } from "../dom";
import { parseFloor, parseNowPlaying, parseSegment } from "../events";
import { formatTime, t } from "../i18n";

export const FREE: FloorInfo = { state: "free" };

/** A segment as the lineup shows it: the segment on air (until when) or the next (from when);
 * the events' SegmentInfo/NextSegment and the schedule's slots all fit. */
export interface LineupItem {
  title: string;
  starts?: string;
  ends?: string | null;
}

/** The listener count: the API's when it has given one, else the room's own count. */
export function audience(fromApi: number | null, inRoom: number | null): number | null {
  return fromApi ?? inRoom;
}

/** Who holds the floor, if anyone. */
export function heldBy(floor: FloorInfo): string | null {
  return floor.state === "held" && floor.holder != null ? floor.holder : null;
}

export interface OnAirUi {
  nowTitle: HTMLElement;
  nowUntil: HTMLElement;
  nextTitle: HTMLElement;
  playing: HTMLElement;
  playingTitle: HTMLElement;
  playingArtist: HTMLElement;
  floorLine: HTMLElement;
  listeners: HTMLElement;
}

export interface OnAirDeps {
  me(): string; // this listener's identity
  nameOf(identity: string): string; // the name shown for a participant
  inRoom(): number | null; // the room's own count, when in a room
  floorChanged(): void;
}

export class OnAir {
  private floorNow: FloorInfo = FREE;
  private fromApi: number | null = null;

  constructor(
    private readonly ui: OnAirUi,
    private readonly d: OnAirDeps,
  ) {}

  get floor(): FloorInfo {
    return this.floorNow;
  }

  /** The holder's name: the host names them (their nickname), else the room does. */
  holderName(f: FloorInfo): string {
    return f.holder_name || this.d.nameOf(f.holder ?? "");
  }

  lineup(now: LineupItem | null, next: LineupItem | null): void {
    if (now) {
      this.ui.nowTitle.textContent = now.title;
      this.ui.nowUntil.textContent = now.ends ? t("until", { t: formatTime(now.ends) }) : "";
    }
    if (next) {
      this.ui.nextTitle.textContent = next.starts
        ? `${formatTime(next.starts)} ${next.title}`
        : next.title;
    }
  }

  /** The track on air, next to the segment (text only: titles and artists come from files). */
  playing(track: NowPlaying | null): void {
    show(this.ui.playing, track !== null);
    this.ui.playingTitle.textContent = track?.title ?? "";
    this.ui.playingArtist.textContent = track?.artist
      ? t("playing.by", { artist: track.artist })
      : "";
  }

  setFloor(f: FloorInfo): void {
    this.floorNow = f;
    const holder = heldBy(f);
    this.ui.floorLine.textContent =
      holder !== null ? t("ptt.busyWho", { name: this.holderName(f) }) : "";
    show(this.ui.floorLine, holder !== null && holder !== this.d.me());
    this.d.floorChanged();
  }

  /** The host's attributes: the segment, the track, the floor. */
  readHost(attributes: Record<string, string>): void {
    const seg = parseSegment(attributes[ATTR_SEGMENT]);
    this.lineup(seg.now, seg.next);
    this.playing(parseNowPlaying(attributes[ATTR_NOW_PLAYING]));
    const floor = parseFloor(attributes[ATTR_FLOOR]);
    if (floor) this.setFloor(floor);
  }

  /** The count the API gives (the host counts the room's listeners). */
  listeners(n: number): void {
    this.fromApi = n;
    this.renderAudience();
  }

  renderAudience(): void {
    const n = audience(this.fromApi, this.d.inRoom());
    show(this.ui.listeners, n !== null);
    if (n !== null) this.ui.listeners.textContent = t("listeners", { n });
  }
}

// The station's sound: the room's audio tracks played through hidden media elements, the
// volume and mute the listener sets, and the level meter (which shows the station is on).

import type { RemoteTrack } from "livekit-client";

export const METER_MS = 80;

/** The meter's next value: it jumps up with the sound and falls back smoothly. */
export function meterLevel(level: number, rms: number): number {
  const target = Math.min(1, rms * 4);
  return target > level ? target : level * 0.85 + target * 0.15;
}

interface Playing {
  el: HTMLMediaElement;
  src: MediaStreamAudioSourceNode | null;
}

export class Player {
  private ctx: AudioContext | null = null;
  private analyser: AnalyserNode | null = null;
  private readonly tracks = new Map<string, Playing>();
  private volume = 1;
  private mutedNow = false;
  private level = 0;
  private readonly buf = new Float32Array(2048);

  constructor(private readonly meter: HTMLMeterElement) {
    // A timer, not requestAnimationFrame: the meter keeps moving in a background tab.
    window.setInterval(() => this.measure(), METER_MS);
  }

  get muted(): boolean {
    return this.mutedNow;
  }

  /** Inside a user gesture: browsers only let audio start from one. */
  unlock(): void {
    if (!this.ctx) {
      this.ctx = new AudioContext();
      this.analyser = this.ctx.createAnalyser();
      this.analyser.fftSize = 2048;
    }
    void this.ctx.resume();
  }

  add(track: RemoteTrack): void {
    const elm = track.attach();
    elm.volume = this.volume;
    elm.muted = this.mutedNow;
    elm.hidden = true;
    document.body.append(elm);
    let src: MediaStreamAudioSourceNode | null = null;
    if (this.ctx && this.analyser) {
      // The meter listens to what arrives, before volume and mute: it shows the station is on.
      src = this.ctx.createMediaStreamSource(new MediaStream([track.mediaStreamTrack]));
      src.connect(this.analyser);
    }
    this.tracks.set(track.sid ?? String(this.tracks.size), { el: elm, src });
  }

  remove(track: RemoteTrack): void {
    const key = track.sid ?? "";
    const entry = this.tracks.get(key);
    if (!entry) return;
    track.detach(entry.el);
    entry.el.remove();
    entry.src?.disconnect();
    this.tracks.delete(key);
  }

  clear(): void {
    for (const entry of this.tracks.values()) {
      entry.el.remove();
      entry.src?.disconnect();
    }
    this.tracks.clear();
  }

  setVolume(v: number): void {
    this.volume = v;
    for (const { el } of this.tracks.values()) el.volume = v;
  }

  setMuted(m: boolean): void {
    this.mutedNow = m;
    for (const { el } of this.tracks.values()) el.muted = m;
  }

  private measure(): void {
    let rms = 0;
    if (this.analyser && this.tracks.size > 0) {
      this.analyser.getFloatTimeDomainData(this.buf);
      let sum = 0;
      for (const x of this.buf) sum += x * x;
      rms = Math.sqrt(sum / this.buf.length);
    }
    this.level = meterLevel(this.level, rms);
    this.meter.value = this.level < 0.001 ? 0 : this.level;
    this.meter.dataset.level = this.level.toFixed(3);
  }
}

// The LiveKit side of the listener page: one Room at a time, its events turned into the
// connection machine's events (connection.ts) and into calls on the page's parts (sound,
// captions, the host's attributes, the audience), and the room calls push-to-talk makes.

import {
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
import { ApiError, type LiveKitGrant, api } from "../api";
import { DEFAULT_HOST_IDENTITY, TOPIC_TRANSCRIPTION } from "../contract";
import type { CaptionStream } from "./captions";
import type { ConnEvent } from "./connection";
import { MicError, TurnError } from "./ptt";

export interface LinkHandlers {
  dispatch(e: ConnEvent): void;
  trackAdded(track: RemoteTrack): void;
  trackRemoved(track: RemoteTrack): void;
  playbackBlocked(blocked: boolean): void; // the browser wants a tap before it plays sound
  host(p: Participant): void; // the host joined, or changed its attributes
  audienceChanged(): void;
  caption(stream: CaptionStream, identity: string): void;
}

/** A room call's failure as push-to-talk reads it. */
function turnError(err: unknown): TurnError {
  if (!(err instanceof RpcError)) {
    return new TurnError("failed", err instanceof Error ? err.message : String(err));
  }
  if (/not hold/i.test(err.message)) return new TurnError("notHolding", err.message);
  if (/"code"\s*:\s*"busy"/.test(err.data ?? "") || /busy/i.test(err.message)) {
    return new TurnError("busy", err.message);
  }
  const c = RpcError.ErrorCode;
  const noHost: number[] = [
    c.RECIPIENT_NOT_FOUND,
    c.RECIPIENT_DISCONNECTED,
    c.UNSUPPORTED_METHOD,
    c.RESPONSE_TIMEOUT,
    c.CONNECTION_TIMEOUT,
  ];
  return new TurnError(noHost.includes(err.code) ? "noHost" : "failed", err.message);
}

export class StationLink {
  private room: Room | null = null;
  private wanted = 0; // the run being joined or in the room; 0: none
  myIdentity = "";
  // Learnt from the API with each room token; captions count only from it and the floor holder.
  hostIdentity: string = DEFAULT_HOST_IDENTITY;

  constructor(private readonly on: LinkHandlers) {}

  /** Join the room for `run` with a fresh room token (it expires within minutes and cannot be
   * revoked), answering `joined` or `failed`. Any room held before is closed first. */
  async open(run: number, apiToken: string): Promise<void> {
    void this.close();
    this.wanted = run;
    let grant: LiveKitGrant;
    try {
      grant = await api.livekitToken(apiToken);
    } catch (err) {
      const why =
        err instanceof ApiError && err.status === 401
          ? "session"
          : err instanceof ApiError && err.status === 403
            ? "banned"
            : "other";
      if (this.wanted === run) this.on.dispatch({ type: "failed", run, why });
      return;
    }
    if (this.wanted !== run) return;
    this.myIdentity = grant.identity;
    this.hostIdentity = grant.host_identity;
    const r = this.newRoom();
    this.room = r;
    try {
      await r.connect(grant.url, grant.token, { autoSubscribe: true });
    } catch {
      if (this.wanted !== run) return;
      if (this.room === r) this.room = null;
      this.on.dispatch({ type: "failed", run, why: "other" });
      return;
    }
    if (this.wanted !== run) {
      void r.disconnect(); // closed (or replaced) while it was joining
      return;
    }
    if (this.room !== r) {
      // Lost again before the join was told (its Disconnected came first).
      this.on.dispatch({ type: "failed", run, why: "other" });
      return;
    }
    this.on.dispatch({ type: "joined", run });
  }

  /** Leave the room (if any). `first` runs while the room is still there (a turn's cancel must
   * reach the host before the listener goes); a join asked for meanwhile is not undone. */
  async close(first?: () => Promise<void>): Promise<void> {
    this.wanted = 0;
    const r = this.room;
    if (first) await first();
    if (this.room === r) this.room = null;
    await r?.disconnect();
  }

  private newRoom(): Room {
    const r = new Room({ adaptiveStream: false, dynacast: false, disconnectOnPageLeave: true });
    const mine = () => this.room === r;
    r.on(RoomEvent.TrackSubscribed, (track: RemoteTrack) => {
      if (track.kind === Track.Kind.Audio) this.on.trackAdded(track);
    });
    r.on(RoomEvent.TrackUnsubscribed, (track: RemoteTrack) => this.on.trackRemoved(track));
    r.on(RoomEvent.AudioPlaybackStatusChanged, () => this.on.playbackBlocked(!r.canPlaybackAudio));
    r.on(RoomEvent.ParticipantConnected, (p: RemoteParticipant) => {
      if (p.identity === this.hostIdentity) this.on.host(p);
      this.on.audienceChanged();
    });
    r.on(RoomEvent.ParticipantDisconnected, () => this.on.audienceChanged());
    r.on(RoomEvent.ParticipantAttributesChanged, (_: Record<string, string>, p: Participant) => {
      if (p.identity === this.hostIdentity) this.on.host(p);
    });
    const recovering = () => mine() && this.on.dispatch({ type: "recovering" });
    r.on(RoomEvent.Reconnecting, recovering);
    r.on(RoomEvent.SignalReconnecting, recovering);
    r.on(RoomEvent.Reconnected, () => mine() && this.on.dispatch({ type: "recovered" }));
    r.on(RoomEvent.Disconnected, (reason?: DisconnectReason) => {
      if (!mine()) return;
      this.room = null;
      this.on.dispatch({ type: "dropped", byUs: reason === DisconnectReason.CLIENT_INITIATED });
    });
    r.registerTextStreamHandler(TOPIC_TRANSCRIPTION, (reader, from) => {
      this.on.caption(reader, from.identity);
    });
    return r;
  }

  /** The host participant, when it is in the room. */
  host(): Participant | undefined {
    return this.room?.remoteParticipants.get(this.hostIdentity);
  }

  /** Everyone in the room but the station's agents (the host), this listener included; null
   * when not in a room. */
  audience(): number | null {
    if (!this.room) return null;
    let n = 1;
    for (const p of this.room.remoteParticipants.values())
      if (p.kind !== ParticipantKind.AGENT) n++;
    return n;
  }

  /** The name a participant joined with (the nickname), or their identity. */
  nameOf(identity: string): string {
    return this.room?.getParticipantByIdentity(identity)?.name || identity;
  }

  get playbackBlocked(): boolean {
    return this.room ? !this.room.canPlaybackAudio : false;
  }

  /** Start the sound (inside a user gesture, where browsers require one). */
  async startAudio(): Promise<void> {
    await this.room?.startAudio();
  }

  // --- what push-to-talk asks of the room ------------------------------------------------------

  /** A call to the host; its failure as a TurnError. */
  async rpc(method: string): Promise<string> {
    if (!this.room) throw new TurnError("failed", "not connected");
    try {
      return await this.room.localParticipant.performRpc({
        destinationIdentity: this.hostIdentity,
        method,
        payload: "",
        responseTimeout: 10_000,
      });
    } catch (err) {
      throw turnError(err);
    }
  }

  /** Open the microphone once the host has let this listener publish (within 5 s). */
  async openMic(): Promise<void> {
    const r = this.room;
    if (!r || !(await this.waitForPublish(r, 5000))) throw new MicError("noPermission");
    try {
      await r.localParticipant.setMicrophoneEnabled(true, {
        echoCancellation: true,
        noiseSuppression: true,
        autoGainControl: true,
      });
    } catch {
      throw new MicError("noMic");
    }
  }

  async closeMic(): Promise<void> {
    const r = this.room;
    if (!r) return;
    const pub = r.localParticipant.getTrackPublication(Track.Source.Microphone);
    if (pub?.track) await r.localParticipant.unpublishTrack(pub.track, true).catch(() => {});
  }

  private async waitForPublish(r: Room, ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (r.localParticipant.permissions?.canPublish) return true;
      await new Promise((res) => setTimeout(res, 50));
    }
    return Boolean(r.localParticipant.permissions?.canPublish);
  }
}

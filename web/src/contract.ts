// The contract as the pages read it, from the server's own definitions (web/codegen/schema.py):
// the live events and host attributes (contract/events.py), the room's names (contract/room.py).
// The API's routes and bodies are typed in api.ts from its OpenAPI schema.

export {
  ATTR_FLOOR,
  ATTR_NOW_PLAYING,
  ATTR_SEGMENT,
  ATTR_TRANSCRIPTION_FINAL,
  DEFAULT_HOST_IDENTITY,
  RPC_CANCEL_TURN,
  RPC_END_TURN,
  RPC_START_TURN,
  TOPIC_TRANSCRIPTION,
} from "./generated/room";
export type {
  FloorEnded,
  FloorEvent,
  FloorInfo,
  ListenersEvent,
  NextSegment,
  NowPlaying,
  NowPlayingEvent,
  PageEvent,
  PostStatusEvent,
  SegmentEvent,
  SegmentInfo,
  Snapshot,
} from "./generated/events";

// LiveKit's own caption attribute: which spoken segment a transcription stream belongs to.
export const ATTR_SEGMENT_ID = "lk.segment_id";
// The longest post the API takes (api/moderation.py POST_MAX_CHARS: 422 beyond), in characters.
export const MAX_POST_CHARS = 500;
// A turn's length when the host's start_turn reply does not say.
export const DEFAULT_MAX_TURN_SECONDS = 30;

"""Names the host and the pages share inside the LiveKit room.

The page's copy is generated from here (`web/src/generated/room.ts`), so the two cannot
drift.
"""

from __future__ import annotations

# The host participant's attributes (JSON values; shapes in contract.events).
ATTR_FLOOR = "radio24.floor"  # FloorInfo
ATTR_SEGMENT = "radio24.segment"  # SegmentInfo with `next`
ATTR_NOW_PLAYING = "radio24.now_playing"  # NowPlaying or null
# Push-to-talk RPC methods on the host (names from LiveKit's push-to-talk example).
RPC_START_TURN = "start_turn"
RPC_END_TURN = "end_turn"
RPC_CANCEL_TURN = "cancel_turn"
# LiveKit Agents' caption stream and its "final" attribute.
TOPIC_TRANSCRIPTION = "lk.transcription"
ATTR_TRANSCRIPTION_FINAL = "lk.transcription_final"
# The host's default identity in the room (settings: HOST_IDENTITY); pages are told the real one
# with every room token.
DEFAULT_HOST_IDENTITY = "host"
DEFAULT_AGENT_NAME = "radio-host"

NAMES: dict[str, str] = {
    "ATTR_FLOOR": ATTR_FLOOR,
    "ATTR_SEGMENT": ATTR_SEGMENT,
    "ATTR_NOW_PLAYING": ATTR_NOW_PLAYING,
    "RPC_START_TURN": RPC_START_TURN,
    "RPC_END_TURN": RPC_END_TURN,
    "RPC_CANCEL_TURN": RPC_CANCEL_TURN,
    "TOPIC_TRANSCRIPTION": TOPIC_TRANSCRIPTION,
    "ATTR_TRANSCRIPTION_FINAL": ATTR_TRANSCRIPTION_FINAL,
    "DEFAULT_HOST_IDENTITY": DEFAULT_HOST_IDENTITY,
}

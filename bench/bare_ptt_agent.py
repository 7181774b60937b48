"""A bare push-to-talk agent: the yardstick `bench/ptt_latency.py` holds the host against.

It has the shape of LiveKit's own push-to-talk example, and nothing of radio24: an AgentSession
on the OpenAI Realtime model with manual turn detection, audio input off between turns, and three
RPC methods: `start_turn` (interrupt, clear the user turn, listen to the caller, audio on),
`end_turn` (audio off, commit the user turn, which asks the model for a reply) and `cancel_turn`
(audio off, clear the user turn). No floor, no microphone grants, no VAD, no database, no on-air
loop. Whatever the host takes on top of this is radio24's overhead.

    python bench/bare_ptt_agent.py start   # LIVEKIT_URL/_API_KEY/_API_SECRET, OPENAI_BASE_URL,
                                            # BARE_AGENT_NAME, BARE_HEALTH_PORT

The entry points are module-level because the job process receives them by pickling.
"""

from __future__ import annotations

import os

from livekit import rtc
from livekit.agents import Agent, AgentServer, AgentSession, JobContext, JobRequest, cli
from livekit.plugins import openai

AGENT_NAME = os.environ.get("BARE_AGENT_NAME", "bare-ptt")


async def on_request(request: JobRequest) -> None:
    await request.accept(identity="host", name="bare push-to-talk agent")


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    session: AgentSession = AgentSession(
        llm=openai.realtime.RealtimeModel(),  # OPENAI_BASE_URL points it at the fake
        vad=None,
        turn_handling={"turn_detection": "manual"},
        aec_warmup_duration=None,
        user_away_timeout=None,
    )
    await session.start(Agent(instructions="You are a helpful assistant."), room=ctx.room)
    session.input.set_audio_enabled(False)

    async def start_turn(data: rtc.RpcInvocationData) -> str:
        session.interrupt()
        session.clear_user_turn()
        session.room_io.set_participant(data.caller_identity)
        session.input.set_audio_enabled(True)
        return "ok"

    async def end_turn(data: rtc.RpcInvocationData) -> str:
        session.input.set_audio_enabled(False)
        session.commit_user_turn()
        return "ok"

    async def cancel_turn(data: rtc.RpcInvocationData) -> str:
        session.input.set_audio_enabled(False)
        session.clear_user_turn()
        return "ok"

    me = ctx.room.local_participant
    me.register_rpc_method("start_turn", start_turn)
    me.register_rpc_method("end_turn", end_turn)
    me.register_rpc_method("cancel_turn", cancel_turn)


def _never_loaded() -> float:
    return 0.0


def build_server() -> AgentServer:
    server = AgentServer(
        host="127.0.0.1",
        port=int(os.environ.get("BARE_HEALTH_PORT", "0")),
        num_idle_processes=1,
        load_fnc=_never_loaded,  # a busy benchmark machine must not make it refuse the job
        drain_timeout=5,
    )
    server.rtc_session(entrypoint, agent_name=AGENT_NAME, on_request=on_request)
    return server


if __name__ == "__main__":
    cli.run_app(build_server())

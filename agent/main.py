"""The host worker's composition root: `python agent/main.py dev|start`.

It only wires things: settings, the AgentServer, and the host's session entry point. The host's
behaviour lives in `agent/job.py` and the parts it wires; the keeper dispatches it into the
station room. The entry points are module-level because the job process receives them by
pickling.
"""

from __future__ import annotations

from livekit.agents import NOT_GIVEN, AgentServer, JobContext, JobProcess, JobRequest, cli

from agent.job import run_host
from agent.settings import HostSettings
from agent.store.heartbeat import worker_registered
from contract.keys import Keys
from core.settings import load


async def on_request(request: JobRequest) -> None:
    settings = load(HostSettings)
    await request.accept(identity=settings.host_identity, name="radio24 host")


async def entrypoint(ctx: JobContext) -> None:
    await run_host(ctx, load(HostSettings))


def prewarm(proc: JobProcess) -> None:
    """Runs in each warm job process before any dispatch. The slow loads happen here, not on
    the job's event loop: a job whose loop is blocked for seconds by imports starts speaking
    late after a takeover (and cannot answer RPCs meanwhile)."""
    import anyio._backends._asyncio  # noqa: F401  (imported on first use otherwise: ~0.2 s)
    import httpx  # noqa: F401
    from livekit.plugins import silero

    proc.userdata["vad"] = silero.VAD.load()
    settings = load(HostSettings)
    if not settings.offline:
        from livekit.plugins import openai

        # Building a model (no connection yet) imports the Realtime types (~2 s on a busy box).
        openai.realtime.RealtimeModel(
            api_key="prewarm", base_url=settings.openai_base_url or NOT_GIVEN
        )


def _never_loaded() -> float:
    return 0.0


def build_server(settings: HostSettings) -> AgentServer:
    server = AgentServer(
        ws_url=settings.livekit_url,
        api_key=settings.livekit_api_key,
        api_secret=settings.livekit_api_secret.get_secret_value(),
        host="127.0.0.1",
        port=settings.host_health_port,
        num_idle_processes=1,
        # A worker registers with LiveKit only once its warm process is ready (the framework
        # waits this long, plus 2 s, before registering anyway). With the default 10 s a worker
        # still preloading on a busy machine took a takeover dispatch and kept the station
        # silent for seconds more while its forkserver finished (8 s after a job kill in CI).
        initialize_process_timeout=60.0,
        # The worker exists for one station: it must always take its dispatch, even when the
        # machine is busy, and on SIGTERM the host leaves within seconds instead of draining
        # for an hour (the keeper dispatches it again on the next worker).
        load_fnc=_never_loaded,
        drain_timeout=settings.host_drain_seconds,
        setup_fnc=prewarm,
        # Imported once in the process server that forks the job processes: a new job (a
        # takeover) starts with them loaded.
        preload_modules=["agent.job", "livekit.plugins.openai", "httpx"],
    )
    server.rtc_session(entrypoint, agent_name=settings.agent_name, on_request=on_request)
    keys = Keys(settings.radio_room)
    server.on(
        "worker_registered",
        lambda worker_id, _info: worker_registered(settings.redis_url, keys, worker_id),
    )
    return server


def main() -> None:
    cli.run_app(build_server(load(HostSettings)))


if __name__ == "__main__":
    main()

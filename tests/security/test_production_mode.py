"""Compose in production mode that was not: `.env.example`'s `RADIO_ENV=development`, loaded by
`env_file`, overrode the image's `production`, so the public dev key pair was accepted. Here the
api's and agent's environment is put together exactly as Compose does (image ENV < env_file <
environment, `${VAR}` from .env) with `.env.example` used as is, and the settings must refuse."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from api.settings import ApiSettings
from core.settings import StationSettings
from radio24 import rack

ROOT = rack.ROOT


def _dotenv(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip('"')
    return values


def _image_env(dockerfile: Path) -> dict[str, str]:
    """The `ENV` lines of the image's last stage."""
    text = dockerfile.read_text().replace("\\\n", " ")
    last_stage = text.rsplit("\nFROM ", 1)[-1]
    env: dict[str, str] = {}
    for line in last_stage.splitlines():
        if line.startswith("ENV "):
            env |= dict(re.findall(r"(\w+)=(\S+)", line))
    return env


def _interpolate(value: str, dotenv: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(3) or ""
        return dotenv.get(name) or default

    return re.sub(r"\$\{(\w+)(:?[-?]([^}]*))?\}", one, value)


def compose_environment(service: str, dockerfile: str) -> dict[str, str]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    spec = compose["services"][service]
    dotenv = _dotenv(ROOT / ".env.example")  # copied to .env as it is
    env = _image_env(ROOT / dockerfile)
    assert spec["env_file"] == ".env"
    env |= dotenv
    env |= {k: _interpolate(str(v), dotenv) for k, v in (spec.get("environment") or {}).items()}
    return env


@pytest.mark.parametrize(
    ("service", "dockerfile", "settings"),
    [("api", "Dockerfile.api", ApiSettings), ("agent", "Dockerfile.agent", StationSettings)],
)
def test_compose_with_the_example_env_refuses_the_dev_keys(
    service: str,
    dockerfile: str,
    settings: type[StationSettings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = compose_environment(service, dockerfile)
    assert env["RADIO_ENV"] == "production"
    for key in list(os.environ):
        if key.upper().startswith(("RADIO_", "LIVEKIT_", "API_", "DATABASE_", "REDIS_")):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match="dev key"):
        settings(_env_file=None)  # type: ignore[call-arg]


def test_the_example_env_still_runs_the_station_in_development() -> None:
    # `make run` reads .env too: the example stays a working development setup.
    env = _dotenv(ROOT / ".env.example")
    assert env["RADIO_ENV"] == "development"
    settings = ApiSettings(_env_file=ROOT / ".env.example")  # type: ignore[call-arg]
    assert settings.livekit_api_key == "devkey"

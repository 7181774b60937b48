"""A missing or invalid setting stops a process with one line naming it and the fix; dev keys
are refused in production."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from api.settings import ApiSettings
from core.settings import StationSettings, load


def _load_in_child(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "import api.settings, core.settings as s; s.load(api.settings.ApiSettings)"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT", "RADIO", "API_"))}
    return subprocess.run([sys.executable, "-c", code], env=clean | env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def test_invalid_setting_is_one_line_naming_it() -> None:
    done = _load_in_child({"RADIO_ROOM": "no spaces allowed"})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "RADIO_ROOM" in lines[0] and "Traceback" not in done.stderr


def test_production_refuses_dev_keys_with_one_line() -> None:
    done = _load_in_child({"RADIO_ENV": "production"})
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "LIVEKIT_API_KEY" in done.stderr


def test_production_refuses_a_short_jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADIO_ENV", "production")
    monkeypatch.setenv("LIVEKIT_API_KEY", "APIrealkey")
    monkeypatch.setenv("LIVEKIT_API_SECRET", "a-real-secret-from-the-vault-000000")
    monkeypatch.setenv("API_JWT_SECRET", "short")
    with pytest.raises(SystemExit):
        load(ApiSettings)
    monkeypatch.setenv("API_JWT_SECRET", "x" * 40)
    assert load(ApiSettings).radio_env == "production"


def test_secrets_never_appear_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEKIT_API_SECRET", "super-secret-value")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-hidden")
    settings = StationSettings()
    assert "super-secret-value" not in repr(settings) and "sk-hidden" not in repr(settings)
    assert settings.offline is False

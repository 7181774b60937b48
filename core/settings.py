"""Settings shared by every radio24 process.

One pydantic-settings class per process (`agent.settings.HostSettings`,
`api.settings.ApiSettings`) derives from `StationSettings`, so both sides read the same
environment names. Dev defaults match `make run`; with `RADIO_ENV=production` the dev keys
are refused so a deployment cannot go live with them.
"""

from __future__ import annotations

import sys
from typing import Literal, Self, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Dev keys: livekit-server's own `--dev` pair, and a JWT secret that says what it is.
DEV_LIVEKIT_API_KEY = "devkey"
DEV_LIVEKIT_API_SECRET = "secret"
DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-0123456789"

# Ports `make run` uses; tests never use them.
RUN_PORTS = {"livekit": 7880, "postgres": 55432, "redis": 56379, "api": 8000}


class StationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    radio_env: Literal["development", "production"] = "development"
    livekit_url: str = f"ws://127.0.0.1:{RUN_PORTS['livekit']}"
    livekit_api_key: str = DEV_LIVEKIT_API_KEY
    livekit_api_secret: SecretStr = SecretStr(DEV_LIVEKIT_API_SECRET)
    database_url: SecretStr = SecretStr(
        f"postgresql://postgres@127.0.0.1:{RUN_PORTS['postgres']}/radio24"
    )
    redis_url: str = f"redis://127.0.0.1:{RUN_PORTS['redis']}/0"
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    radio_room: str = Field(default="radio24", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    radio_prompts_dir: str = "prompts"
    # The host worker's dispatch name and room identity (the keeper in the API dispatches it).
    agent_name: str = "radio-host"
    host_identity: str = "host"

    @model_validator(mode="after")
    def _refuse_dev_keys_in_production(self) -> Self:
        if self.radio_env != "production":
            return self
        if self.livekit_api_key == DEV_LIVEKIT_API_KEY:
            raise ValueError("LIVEKIT_API_KEY is the dev key; set a real key in production")
        if self.livekit_api_secret.get_secret_value() == DEV_LIVEKIT_API_SECRET:
            raise ValueError("LIVEKIT_API_SECRET is the dev secret; set a real one in production")
        return self

    @property
    def offline(self) -> bool:
        """No OpenAI key: the host runs in offline automation mode."""
        return self.openai_api_key is None or not self.openai_api_key.get_secret_value()


S = TypeVar("S", bound=BaseSettings)


def load(cls: type[S]) -> S:
    """Load settings or stop the process with one line naming the setting and the fix."""
    try:
        return cls()
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        where = f"setting {str(err['loc'][0]).upper()}: " if err["loc"] else ""
        sys.stderr.write(f"radio24: invalid {where}{msg} (fix it in the environment or .env)\n")
        raise SystemExit(2) from None

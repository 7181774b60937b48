"""The API's settings (same environment names as the host's)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator

from radio24.settings import DEV_JWT_SECRET, StationSettings


class ApiSettings(StationSettings):
    api_jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # The browser-facing LiveKit URL can differ from the one the API uses server-side.
    livekit_public_url: str | None = None
    listener_token_ttl_seconds: int = Field(default=600, ge=60, le=86400)

    @model_validator(mode="after")
    def _refuse_dev_jwt_secret_in_production(self) -> Self:
        secret = self.api_jwt_secret.get_secret_value()
        if self.radio_env == "production" and (secret == DEV_JWT_SECRET or len(secret) < 32):
            raise ValueError("API_JWT_SECRET is the dev secret or shorter than 32 characters")
        return self

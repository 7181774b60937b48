"""The API's settings (same environment names as the host's)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from radio24.settings import DEV_JWT_SECRET, StationSettings


class ApiSettings(StationSettings):
    api_jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # The keeper (api/keeper.py) keeps the station room open and dispatches the host into it.
    api_keeper: bool = True
    # The browser-facing LiveKit URL can differ from the one the API uses server-side.
    livekit_public_url: str | None = None
    # LiveKit room token: short, the client asks again when it reconnects.
    listener_token_ttl_seconds: int = Field(default=600, ge=60, le=86400)
    # The API's own bearer tokens (JWT, HS256).
    api_session_ttl_seconds: int = Field(default=7 * 86400, ge=60)
    api_producer_ttl_seconds: int = Field(default=12 * 3600, ge=60)
    # Posts per listener per window (Redis sliding window); producers are not limited.
    api_post_rate_limit: int = Field(default=5, ge=1)
    api_post_rate_window_seconds: int = Field(default=60, ge=1)
    # New listener sessions per client address per window (uvicorn's --proxy-headers and
    # --forwarded-allow-ips make that the listener's address behind a trusted proxy).
    api_session_rate_limit: int = Field(default=10, ge=1)
    api_session_rate_window_seconds: int = Field(default=60, ge=1)
    # Failed logins per username and client address per window.
    api_login_rate_limit: int = Field(default=10, ge=1)
    api_login_rate_window_seconds: int = Field(default=300, ge=1)
    # How often the relay looks for posts Redis missed, and the embedding worker for new posts.
    api_relay_interval_seconds: float = Field(default=2.0, gt=0)
    api_embed_interval_seconds: float = Field(default=2.0, gt=0)
    # auto: OpenAI when OPENAI_API_KEY is set, else the local multilingual model; off: no worker.
    api_embeddings: Literal["auto", "openai", "local", "off"] = "auto"
    # OpenAI moderation when OPENAI_API_KEY is set (the blocklist always applies).
    api_openai_moderation: bool = True
    # WebSocket fan-out: events a client may lag behind before it is dropped, send deadline.
    api_ws_queue_size: int = Field(default=64, ge=1)
    api_ws_send_timeout_seconds: float = Field(default=5.0, gt=0)
    api_log_format: Literal["json", "text"] = "json"
    api_log_level: str = "INFO"

    @model_validator(mode="after")
    def _refuse_dev_jwt_secret_in_production(self) -> Self:
        secret = self.api_jwt_secret.get_secret_value()
        if self.radio_env == "production" and (secret == DEV_JWT_SECRET or len(secret) < 32):
            raise ValueError("API_JWT_SECRET is the dev secret or shorter than 32 characters")
        return self

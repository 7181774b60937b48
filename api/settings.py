"""The API's settings (same environment names as the host's)."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from core.settings import DEV_JWT_SECRET, StationSettings


class ApiSettings(StationSettings):
    api_jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # The keeper (api/keeper.py) keeps the station room open and dispatches the host into it.
    api_keeper: bool = True
    # The browser-facing LiveKit URL can differ from the one the API uses server-side.
    livekit_public_url: str | None = None
    # LiveKit room token: only good for joining, so short; the page asks for a new one each time
    # it (re)joins. A banned listener's old token stops working this soon after the ban.
    listener_token_ttl_seconds: int = Field(default=120, ge=5, le=3600)
    # The one-time ticket a page trades for the live-event WebSocket (no JWT in the URL).
    api_ws_ticket_ttl_seconds: int = Field(default=30, ge=1, le=300)
    # The API's own bearer tokens (JWT, HS256).
    api_session_ttl_seconds: int = Field(default=7 * 86400, ge=60)
    api_producer_ttl_seconds: int = Field(default=12 * 3600, ge=60)
    # Posts per listener per window (Redis sliding window); producers are not limited.
    api_post_rate_limit: int = Field(default=5, ge=1)
    api_post_rate_window_seconds: int = Field(default=60, ge=1)
    # Proxies (addresses or CIDRs, comma-separated) whose X-Forwarded-For names the client.
    # Empty: the header is ignored and the socket's peer is the client. Behind a load balancer,
    # list exactly its addresses: a client's own X-Forwarded-For is then never believed.
    api_trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list
    )
    # New listener sessions per client address per window.
    api_session_rate_limit: int = Field(default=10, ge=1)
    api_session_rate_window_seconds: int = Field(default=60, ge=1)
    # Sign-in attempts (right or wrong) per client address, and per account name, per window;
    # counted before the password is checked, refused (503) when Redis cannot count them.
    api_login_rate_limit: int = Field(default=10, ge=1)
    api_login_account_rate_limit: int = Field(default=20, ge=1)
    api_login_rate_window_seconds: int = Field(default=300, ge=1)
    # Password checks (argon2) running at once, and waiting beyond those before a 503.
    api_login_concurrency: int = Field(default=2, ge=1)
    api_login_queue: int = Field(default=8, ge=0)
    # /metrics: a bearer token for Prometheus; unset, only loopback clients may scrape.
    api_metrics_token: SecretStr | None = None
    # Station gauges (Postgres and Redis counts) are read at most this often, whatever scrapes.
    api_metrics_refresh_seconds: float = Field(default=15.0, ge=0)
    # How often the relay looks for posts Redis missed, and the embedding worker for new posts.
    api_relay_interval_seconds: float = Field(default=2.0, gt=0)
    api_embed_interval_seconds: float = Field(default=2.0, gt=0)
    # auto: OpenAI when OPENAI_API_KEY is set, else the local multilingual model; off: no worker.
    api_embeddings: Literal["auto", "openai", "local", "off"] = "auto"
    # OpenAI moderation when OPENAI_API_KEY is set (the blocklist always applies). A nickname
    # that cannot be checked because the service is away is refused for now (503), not let by.
    api_openai_moderation: bool = True
    # WebSocket fan-out: events a client may lag behind before it is dropped, send deadline.
    api_ws_queue_size: int = Field(default=64, ge=1)
    api_ws_send_timeout_seconds: float = Field(default=5.0, gt=0)
    api_log_format: Literal["json", "text"] = "json"
    api_log_level: str = "INFO"

    @field_validator("api_trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",")]
            return [ip_network(part, strict=False) for part in parts if part]
        return value

    @model_validator(mode="after")
    def _refuse_dev_jwt_secret_in_production(self) -> Self:
        secret = self.api_jwt_secret.get_secret_value()
        if self.radio_env == "production" and (secret == DEV_JWT_SECRET or len(secret) < 32):
            raise ValueError("API_JWT_SECRET is the dev secret or shorter than 32 characters")
        return self

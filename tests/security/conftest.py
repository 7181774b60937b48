"""The attack suite: one test per hole a security review found (issue 12), each against the real
parts (API under uvicorn or in-process, Postgres, Redis, LiveKit, Chromium where a page is the
target). The browser tests reuse tests/browser's fixtures."""

from tests.api.conftest import api, api_settings  # noqa: F401
from tests.browser.conftest import (  # noqa: F401
    browser,
    chromium_path,
    mic_wav,
    prompts_dir,
    web,
    web_dist,
)
from tests.host.conftest import fake_realtime, realtime_station  # noqa: F401

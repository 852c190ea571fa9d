"""Unit tests run with the network off: any socket connection fails the test."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _network_off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unit tests run with the network off")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    yield

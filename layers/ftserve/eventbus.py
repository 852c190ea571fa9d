"""Publishes ftserve's domain events on EventBridge (source `ftserve`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from ftserve.aws import client
from ftserve.errors import TransientError

SOURCE = "ftserve"
DetailType = Literal[
    "AdapterRegistered", "AdapterRejected", "ModelPromoted", "ModelRolledBack", "PointerRejected"
]


def publish(detail_type: DetailType, detail: Mapping[str, Any], bus_name: str) -> None:
    """Put one event; a failed entry raises so the trigger is retried, never silently dropped."""
    response = client("events").put_events(
        Entries=[
            {
                "Source": SOURCE,
                "DetailType": detail_type,
                "Detail": json.dumps(detail, default=str),
                "EventBusName": bus_name,
            }
        ]
    )
    if response.get("FailedEntryCount"):
        raise TransientError(f"EventBridge refused {detail_type}: {response['Entries']}")

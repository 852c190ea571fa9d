"""Pointer parsing, split choice and the pointer table's last-good behaviour (no AWS needed)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from ftserve.manifest import Manifest
from ftserve.pointer import parse_pointer
from ftserve.registry import VersionRecord
from ftserve.routing import PointerTable, Rejection, choose
from tests.support import manifest


@pytest.mark.parametrize(
    ("value", "arms"),
    [
        ("v3", (("v3", 100),)),
        (" v3 ", (("v3", 100),)),
        ("v3:90,v2:10", (("v3", 90), ("v2", 10))),
        ("v3:100,v2:0", (("v3", 100),)),
    ],
)
def test_pointer_values(value: str, arms: tuple[tuple[str, int], ...]) -> None:
    assert parse_pointer(value).arms == arms


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("latest", "'latest' is refused"),
        ("v3:90,v2:20", "add up to 110"),
        ("v3:90,v3:10", "twice"),
        ("v3:90;v2:10", "not <version>:<weight>"),
        ("3", "must be 'v'"),
        ("v3:-1,v2:101", "not <version>:<weight>"),
    ],
)
def test_bad_pointer_values_say_why(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_pointer(value)


def test_split_weights_hold_over_2000_callers_and_stay_sticky() -> None:
    pointer = parse_pointer("v3:90,v2:10")
    first = {f"user-{i}": choose(pointer, "acme", f"user-{i}") for i in range(2000)}
    counts = Counter(first.values())
    # Binomial(2000, 0.1): mean 200, sd 13.4; 4 sd either way
    assert 146 <= counts["v2"] <= 254, counts
    assert all(choose(pointer, "acme", user) == version for user, version in first.items())


def test_split_is_independent_per_model() -> None:
    pointer = parse_pointer("v2:50,v1:50")
    a = [choose(pointer, "model-a", f"u{i}") for i in range(400)]
    b = [choose(pointer, "model-b", f"u{i}") for i in range(400)]
    assert a != b


class FakeRecords:
    def __init__(self, versions: dict[str, str]) -> None:
        self.versions = versions  # version → status

    def get(self, model: str, version: str) -> VersionRecord | None:
        if version not in self.versions:
            return None
        return VersionRecord(
            manifest=Manifest.model_validate(manifest(model, version)),
            adapter_uri="s3://b/p/",
            files={},
            content_sha256="x",
            registered_at="t",
            status=self.versions[version],
        )  # type: ignore[arg-type]


def table(values: dict[str, Any], records: FakeRecords) -> tuple[PointerTable, list[Rejection]]:
    rejections: list[Rejection] = []
    calls: list[list[str] | None] = []
    values.setdefault("_calls", calls)

    def fetch(models: list[str] | None) -> dict[str, str]:
        calls.append(models)
        if isinstance(values.get("error"), Exception):
            raise values["error"]
        return {
            k: v
            for k, v in values.items()
            if k not in ("error", "_calls") and (models is None or k in models)
        }

    return PointerTable(
        fetch=fetch, records=records, ttl_s=0.0, on_reject=rejections.append
    ), rejections  # type: ignore[arg-type]


def test_bad_pointer_keeps_the_last_good_resolution_and_is_reported_once() -> None:
    values: dict[str, Any] = {"acme": "v1"}
    pointers, rejections = table(values, FakeRecords({"v1": "serving", "v2": "load_failed"}))
    assert str(pointers.resolve("acme").pointer) == "v1"
    for bad in ("v9", "v2", "v1:60,v2:60"):
        values["acme"] = bad
        assert str(pointers.resolve("acme").pointer) == "v1"
        assert str(pointers.resolve("acme").pointer) == "v1"
    assert [r.value for r in rejections] == ["v9", "v2", "v1:60,v2:60"]
    assert "not servable (load_failed)" in rejections[1].reason
    assert all(r.serving == "v1" for r in rejections)


def test_unreachable_ssm_keeps_serving() -> None:
    values: dict[str, Any] = {"acme": "v1"}
    pointers, _ = table(values, FakeRecords({"v1": "serving"}))
    pointers.resolve("acme")
    values["error"] = ConnectionError("ssm down")
    assert str(pointers.resolve("acme").pointer) == "v1"


def test_a_deleted_pointer_stops_serving_the_model() -> None:
    from ftserve.routing import ModelNotFound

    values: dict[str, Any] = {"acme": "v1"}
    pointers, _ = table(values, FakeRecords({"v1": "serving"}))
    pointers.resolve("acme")
    del values["acme"]
    with pytest.raises(ModelNotFound):
        pointers.resolve("acme")


def test_one_read_per_ttl_covers_every_model_the_container_serves() -> None:
    import time

    values: dict[str, Any] = {f"m{i}": "v1" for i in range(30)}
    pointers, _ = table(values, FakeRecords({"v1": "serving"}))
    pointers.ttl_s = 0.5
    for i in range(5):
        pointers.resolve(f"m{i}")
    calls = values["_calls"]
    assert all(
        c == [f"m{j}" for j in range(i + 1)] for i, c in enumerate(calls)
    )  # a new model: read now
    calls.clear()
    time.sleep(0.55)
    for _ in range(3):
        for i in range(5):
            pointers.resolve(f"m{i}")
    assert calls == [[f"m{i}" for i in range(5)]]  # one call for all five, once per TTL
    calls.clear()
    assert len(pointers.models()) == 30 and calls == [
        None
    ]  # /v1/models reads every pointer by path

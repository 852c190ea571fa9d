"""The manifest contract: what a training job may write in ftserve.json."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ftserve.manifest import Manifest, parse_manifest_key
from ftserve.validation import manifest_errors
from tests.support import manifest


def test_a_complete_manifest_parses() -> None:
    parsed = Manifest.model_validate(manifest("acme-support", "v3"))
    assert parsed.base_id == "ftserve/tiny-llama"
    assert parsed.has_weights


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"surprise": True}, "unknown key 'surprise'"),
        ({"version": "latest"}, "'latest' is refused"),
        ({"version": "V1"}, "must be 'v' followed by a number"),
        ({"model": "Acme_Support"}, "must be lowercase"),
        ({"model": "-acme"}, "must be lowercase"),
        ({"base_model": "meta-llama/Llama-3.1-8B-Instruct"}, "must be pinned as <id>@<revision>"),
        ({"backend": "tgi"}, "'backend'"),
        ({"dataset_hash": "sha256:xyz"}, "'dataset_hash'"),
        ({"eval": {"accuracy": "high"}}, "'eval.accuracy'"),
        ({"backend": "openai"}, "needs hosted_model_id"),
        ({"hosted_model_id": "ft:gpt-4.1-mini:acme::abc"}, "only for backend 'openai'"),
    ],
)
def test_invalid_manifest_reason_names_the_problem(
    changes: dict[str, object], expected: str
) -> None:
    import json

    _, reasons = manifest_errors(json.dumps(manifest("acme", "v1") | changes).encode(), 65536)
    assert any(expected in r for r in reasons), reasons


def test_every_problem_is_reported_not_only_the_first() -> None:
    import json

    body = manifest("acme", "v1") | {"surprise": 1, "version": "latest"}
    del body["system_prompt"]
    _, reasons = manifest_errors(json.dumps(body).encode(), 65536)
    assert len(reasons) == 3, reasons


def test_manifest_over_the_size_limit_is_not_parsed() -> None:
    parsed, reasons = manifest_errors(b"{" + b" " * 100 + b"}", 50)
    assert parsed is None and "over the 50-byte limit" in reasons[0]


def test_hosted_fine_tune_needs_no_weights() -> None:
    parsed = Manifest.model_validate(
        manifest(
            "acme",
            "v1",
            backend="openai",
            hosted_model_id="ft:gpt-4.1-mini-2025-04-14:acme::abc123",
        )
    )
    assert not parsed.has_weights


def test_manifest_is_immutable() -> None:
    parsed = Manifest.model_validate(manifest("acme", "v1"))
    with pytest.raises(ValidationError):
        parsed.version = "v2"  # type: ignore[misc]


@pytest.mark.parametrize(
    "key",
    [
        "adapters/acme/v1/ftserve.json",
    ],
)
def test_manifest_key_names_model_and_version(key: str) -> None:
    assert parse_manifest_key(key) == ("acme", "v1")


@pytest.mark.parametrize(
    "key",
    [
        "adapters/acme/latest/ftserve.json",
        "adapters/../v1/ftserve.json",
        "adapters/acme/v1/extra/ftserve.json",
        "adapters/acme%2F/v1/ftserve.json",
        "adapters/acmé/v1/ftserve.json",
        "other/acme/v1/ftserve.json",
    ],
)
def test_odd_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError):
        parse_manifest_key(key)

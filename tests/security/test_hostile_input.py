"""Hostile input: fuzzed manifests, request bodies and object keys get a clear error, no write,
no crash."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftserve.inference import ChatRequest, CompletionRequest, InvalidRequest, parse_request
from ftserve.validation import manifest_errors
from tests.support import adapter_files, manifest, upload

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
manifest_fields = st.sampled_from(
    [
        "model",
        "version",
        "base_model",
        "backend",
        "dataset_hash",
        "hyperparams",
        "eval",
        "system_prompt",
        "hosted_model_id",
        "hosted_base_url",
        "files",
        "extra",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(manifest_fields, json_values, max_size=6))
def test_fuzzed_manifests_give_reasons_never_a_crash(changes: dict[str, Any]) -> None:
    raw = json.dumps(manifest("acme", "v1") | changes).encode()
    parsed, reasons = manifest_errors(raw, 1_000_000)
    assert (parsed is None) == bool(reasons)
    assert all(isinstance(r, str) and r for r in reasons)


@settings(max_examples=300, deadline=None)
@given(json_values, st.sampled_from([ChatRequest, CompletionRequest]))
def test_fuzzed_request_bodies_parse_or_name_the_problem(body: Any, kind: Any) -> None:
    try:
        parse_request(kind, body)
    except InvalidRequest as exc:
        assert str(exc)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        json_values.map(json.dumps),
        st.text(max_size=200),
        st.binary(max_size=100).map(lambda b: b.decode("latin-1")),
    )
)
def test_fuzzed_bodies_through_the_api_get_openai_shaped_errors(aws: Any, body: str) -> None:
    from tests.support import load_event

    event = load_event("apigw_chat_completions")
    event["headers"]["authorization"] = "Bearer " + aws_key(aws)
    event["body"] = body
    result = aws.dispatcher.invoke("InvokeFunction", event)
    payload = json.loads(result["body"])
    assert result["statusCode"] in (400, 403, 404, 413), (body, payload)
    assert set(payload["error"]) == {"message", "type", "param", "code"}


_KEYS: dict[str, str] = {}


def aws_key(aws: Any) -> str:
    from ftserve.auth import KeyStore

    if aws.table not in _KEYS:
        _KEYS[aws.table] = KeyStore(aws.table).create("fuzz", ["fuzz-*"])[0]
    return _KEYS[aws.table]


@pytest.mark.parametrize(
    "key",
    [
        "adapters/acme/v1/../v2/ftserve.json",
        "adapters/%2e%2e/v1/ftserve.json",
        "adapters/acme%2Fv1/v1/ftserve.json",
        "adapters/acmé/v1/ftserve.json",
        "adapters/acme/v1 /ftserve.json",
        "adapters/ACME/v1/ftserve.json",
        "adapters//v1/ftserve.json",
    ],
)
def test_odd_object_keys_are_refused_and_nothing_is_written(aws: Any, key: str) -> None:
    from ftserve.registry import Registry

    s3 = aws.clients("s3")
    prefix = key.rsplit("/", 1)[0] + "/"
    for name, data in adapter_files(seed=1).items():
        s3.put_object(Bucket=aws.bucket, Key=prefix + name, Body=data)
    s3.put_object(Bucket=aws.bucket, Key=key, Body=json.dumps(manifest("acme", "v1")).encode())
    aws.dispatcher.pump()
    rejected = [e["detail"] for e in aws.events() if e["detail"].get("key") == key]
    assert len(rejected) == 1 and rejected[0]["reasons"][0].startswith("bad object key")
    assert Registry(aws.table).list_versions("acme") == []


def test_a_pickle_anywhere_in_the_folder_is_refused_unopened(aws: Any) -> None:
    from ftserve.registry import Registry

    model = f"pk-{uuid.uuid4().hex[:6]}"
    bomb = b"cos\nsystem\n(S'touch /tmp/ftserve-pwned'\ntR."  # would run a command if unpickled
    files = adapter_files(seed=1) | {"optimizer.pt": bomb}
    upload(aws.clients("s3"), aws.bucket, model, "v1", files)
    aws.dispatcher.pump()
    rejected = [e["detail"] for e in aws.events() if e["detail"].get("model") == model]
    assert "pickle file 'optimizer.pt' refused" in rejected[0]["reasons"][0]
    assert Registry(aws.table).list_versions(model) == []
    import os

    assert not os.path.exists("/tmp/ftserve-pwned")

"""Keys are stored hashed and compared in constant time; prompts and completions are not logged;
one tenant's key cannot list, call, pin or rate another tenant's models."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.support import load_event, register_on_stub


def _call(aws: Any, key: str, path: str, body: Any = None) -> dict[str, Any]:
    event = load_event("apigw_list_models" if path == "/v1/models" else "apigw_chat_completions")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    method = event["requestContext"]["http"]["method"]
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    event["headers"]["authorization"] = f"Bearer {key}"
    event["body"] = json.dumps(body) if body is not None else ""
    result = aws.dispatcher.invoke("InvokeFunction", event)
    return {
        "status": result["statusCode"],
        "headers": result.get("headers", {}),
        "body": json.loads(result["body"]),
    }


def _serve(aws: Any, model: str) -> None:
    register_on_stub(aws, model, versions=2)
    aws.clients("ssm").put_parameter(
        Name=f"/ftserve/models/{model}/active", Value="v1", Type="String", Overwrite=True
    )


def test_keys_are_stored_only_as_hashes_and_compared_in_constant_time(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hmac

    from ftserve.auth import KeyStore

    store = KeyStore(aws.table)
    key, record = store.create("audit", ["acme-*"])
    items = aws.clients("dynamodb").scan(TableName=aws.table)["Items"]
    assert key not in json.dumps(items)
    assert key.split("_")[-1] not in json.dumps(items)
    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    assert KeyStore(aws.table).authenticate(f"Bearer {key}").key_id == record.key_id
    assert compared and len(compared[0][0]) == 64  # SHA-256 hex against SHA-256 hex


def test_prompts_and_completions_are_not_logged(
    aws: Any, replica: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from ftserve.auth import KeyStore

    model = f"priv-{uuid.uuid4().hex[:6]}"
    _serve(aws, model)
    key, _ = KeyStore(aws.table).create("privacy", [model])
    secret_prompt = f"my card number is 4111-{uuid.uuid4().hex}"
    capsys.readouterr()
    result = _call(
        aws,
        key,
        "/v1/chat/completions",
        {"model": model, "messages": [{"role": "user", "content": secret_prompt}]},
    )
    assert result["status"] == 200
    logged = capsys.readouterr().out
    assert secret_prompt not in logged
    assert '"version":"v1"' in logged.replace(" ", "")  # but which version served it is logged


def test_one_tenant_cannot_list_call_pin_or_rate_another_tenants_models(
    aws: Any, replica: Any
) -> None:
    from ftserve.auth import KeyStore

    ours, theirs = f"ta{uuid.uuid4().hex[:6]}", f"tb{uuid.uuid4().hex[:6]}"
    _serve(aws, f"{ours}-bot")
    _serve(aws, f"{theirs}-bot")
    store = KeyStore(aws.table)
    our_key, _ = store.create("tenant-a", [f"{ours}-*"])
    their_key, _ = store.create("tenant-b", [f"{theirs}-*"])
    chat = {"messages": [{"role": "user", "content": "hi"}]}

    listed = _call(aws, our_key, "/v1/models")["body"]["data"]
    assert {m["id"] for m in listed} == {f"{ours}-bot"}
    for model in (f"{theirs}-bot", f"{theirs}-bot@v1", f"{theirs}-bot@v2"):
        assert _call(aws, our_key, "/v1/chat/completions", chat | {"model": model})["status"] == 403
    theirs_answer = _call(aws, their_key, "/v1/chat/completions", chat | {"model": f"{theirs}-bot"})
    response_id = theirs_answer["body"]["id"]
    rated = _call(aws, our_key, "/v1/feedback", {"response_id": response_id, "score": -1})
    assert rated["status"] == 403

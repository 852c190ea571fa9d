"""The invoke API end to end: API Gateway-shaped events and the official openai client, against
moto server and real vLLM on CPU."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support import adapter_files, base_model_pin, load_event, manifest, upload

pytestmark = pytest.mark.vllm


@dataclass
class Api:
    stack: Any
    url: str
    key: str
    model: str

    def set_pointer(self, value: str, model: str | None = None) -> None:
        from ftserve.pointer import parameter_name

        self.stack.clients("ssm").put_parameter(
            Name=parameter_name("/ftserve/models", model or self.model),
            Value=value,
            Type="String",
            Overwrite=True,
        )

    def register(self, version: str, seed: int, model: str | None = None, **changes: Any) -> None:
        model = model or self.model
        body = manifest(model, version, base_model_pin()) | changes
        files = {} if body.get("backend") == "openai" else adapter_files(seed=seed)
        upload(self.stack.clients("s3"), self.stack.bucket, model, version, files, body)
        self.stack.dispatcher.pump()

    def call(
        self,
        body: Any,
        key: str | None = None,
        path: str = "/v1/chat/completions",
        raw: str | None = None,
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        """The invoke handler with an API Gateway HTTP API event (the sample in events/)."""
        event = load_event(
            "apigw_list_models" if path == "/v1/models" else "apigw_chat_completions"
        )
        method = event["requestContext"]["http"]["method"]
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
        event["headers"]["authorization"] = f"Bearer {self.key if key is None else key}"
        event["body"] = raw if raw is not None else json.dumps(body)
        result = self.stack.dispatcher.invoke("InvokeFunction", event)
        return result["statusCode"], result.get("headers", {}), json.loads(result["body"])

    def chat(
        self, model: str | None = None, user: str | None = None, **extra: Any
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        body = {
            "model": model or self.model,
            "max_tokens": 8,
            "temperature": 0,
            "messages": [{"role": "user", "content": "Where is my order?"}],
        } | extra
        if user:
            body["user"] = user
        return self.call(body)


@pytest.fixture
def api(served: Any) -> Iterator[Api]:
    from ftserve.auth import KeyStore
    from ftserve_local.gateway import Gateway
    from ftserve_local.moto_server import free_port

    family = f"t{uuid.uuid4().hex[:6]}"
    key, _ = KeyStore(served.table).create("tests", [f"{family}-*"])
    gateway = Gateway(served.cloud, served.dispatcher, free_port()).start()
    yield Api(served, gateway.url, key, f"{family}-support")
    gateway.stop()


def test_openai_client_round_trip_is_attributed_to_the_active_version(api: Api) -> None:
    from openai import OpenAI

    api.register("v1", seed=1)
    api.set_pointer("v1")
    client = OpenAI(base_url=f"{api.url}/v1", api_key=api.key, max_retries=0)

    raw = client.chat.completions.with_raw_response.create(
        model=api.model,
        messages=[{"role": "user", "content": "Where is my order?"}],
        max_tokens=8,
        temperature=0,
    )
    completion = raw.parse()

    assert raw.headers["x-ftserve-version"] == f"{api.model}@v1"
    assert raw.headers["x-ftserve-base"] == base_model_pin()
    assert completion.model == f"{api.model}@v1"
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    models = client.models.list()
    assert [m.id for m in models.data] == [api.model]
    legacy = client.completions.create(model=api.model, prompt="Hello", max_tokens=4, temperature=0)
    assert legacy.model == f"{api.model}@v1" and legacy.choices[0].text


def test_a_pointer_write_is_served_within_the_ttl(api: Api) -> None:
    api.register("v1", seed=1)
    api.register("v2", seed=2)
    api.set_pointer("v1")
    assert api.chat()[1]["x-ftserve-version"] == f"{api.model}@v1"

    written = time.monotonic()
    api.set_pointer("v2")
    while api.chat()[1]["x-ftserve-version"] != f"{api.model}@v2":
        assert time.monotonic() - written < 2.0 + 1.0, "rollback not served within TTL + 1 s"
        time.sleep(0.05)
    for _ in range(5):
        assert api.chat()[1]["x-ftserve-version"] == f"{api.model}@v2"


def test_a_bad_pointer_keeps_the_last_good_version_and_is_announced(api: Api) -> None:
    api.register("v1", seed=1)
    api.set_pointer("v1")
    assert api.chat()[0] == 200
    api.stack.events()

    api.set_pointer("v7")
    time.sleep(2.1)
    for _ in range(3):
        status, headers, _ = api.chat()
        assert (status, headers["x-ftserve-version"]) == (200, f"{api.model}@v1")
    rejected = [
        e
        for e in api.stack.events()
        if e["detail-type"] == "PointerRejected" and e["detail"]["model"] == api.model
    ]
    assert len(rejected) == 1
    assert rejected[0]["detail"] | {"reason": ""} == {
        "model": api.model,
        "value": "v7",
        "reason": "",
        "serving": "v1",
        "detected_by": "invoke",
    }
    assert "not registered" in rejected[0]["detail"]["reason"]


def test_a_split_is_sticky_per_user_and_every_response_says_which_version(api: Api) -> None:
    api.register("v1", seed=1)
    api.register("v2", seed=2)
    api.set_pointer("v1:50,v2:50")
    seen: dict[str, set[str]] = {}
    for _round in range(2):
        for user in range(12):
            status, headers, body = api.chat(user=f"user-{user}")
            assert status == 200 and body["model"] == headers["x-ftserve-version"]
            seen.setdefault(f"user-{user}", set()).add(headers["x-ftserve-version"])
    assert all(len(versions) == 1 for versions in seen.values())
    assert {v for vs in seen.values() for v in vs} == {f"{api.model}@v1", f"{api.model}@v2"}


def test_a_pinned_version_is_served_only_if_registered(api: Api) -> None:
    api.register("v1", seed=1)
    api.register("v2", seed=2)
    api.set_pointer("v2")
    status, headers, _ = api.chat(model=f"{api.model}@v1")
    assert (status, headers["x-ftserve-version"]) == (200, f"{api.model}@v1")
    status, _, body = api.chat(model=f"{api.model}@v9")
    assert status == 404 and body["error"]["code"] == "model_not_found"


def test_auth_unknown_key_is_401_and_another_family_is_403(api: Api) -> None:
    from ftserve.auth import KeyStore

    api.register("v1", seed=1)
    api.set_pointer("v1")
    other = f"x{uuid.uuid4().hex[:6]}-bot"
    api.register("v1", seed=2, model=other)
    api.set_pointer("v1", model=other)

    assert api.call({}, key="")[0] == 401
    assert api.call({}, key="fts_abc_not-a-real-key-at-all")[0] == 401
    status, _, body = api.chat(model=other)
    assert status == 403 and body["error"]["type"] == "permission_denied"
    assert api.chat(model=f"{other}@v1")[0] == 403  # pinning does not get around the scope
    listed = api.call(None, path="/v1/models", raw="")
    assert [m["id"] for m in listed[2]["data"]] == [api.model]

    store = KeyStore(api.stack.table)
    key, record = store.create("to-revoke", [api.model])
    assert api.call(None, key=key, path="/v1/models", raw="")[0] == 200
    store.revoke(record.key_id)
    api.stack.dispatcher.reload("InvokeFunction")  # a new container: no cached key
    assert api.call(None, key=key, path="/v1/models", raw="")[0] == 401


@pytest.mark.parametrize(
    ("raw", "status", "param"),
    [
        ("{not json", 400, None),
        (json.dumps({"model": "m", "messages": []}), 400, "messages"),
        (
            json.dumps({"model": "m", "messages": [{"role": "robot", "content": "x"}]}),
            400,
            "messages.0.role",
        ),
        (json.dumps({"messages": [{"role": "user", "content": "x"}]}), 400, "model"),
        (
            json.dumps(
                {"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]}
            ),
            400,
            "stream",
        ),
        (
            json.dumps(
                {"model": "m", "temperature": 9, "messages": [{"role": "user", "content": "x"}]}
            ),
            400,
            "temperature",
        ),
        ("[1, 2]", 400, None),
    ],
)
def test_bad_requests_get_openai_shaped_400_naming_the_field(
    api: Api, raw: str, status: int, param: str | None
) -> None:
    code, headers, body = api.call(None, raw=raw)
    assert code == status
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["param"] == param
    assert "Traceback" not in json.dumps(body)


def test_other_error_paths_are_openai_shaped(api: Api) -> None:
    code, _, body = api.chat(model=f"{api.model.rsplit('-', 1)[0]}-nothing")
    assert (code, body["error"]["code"]) == (404, "model_not_found")
    code, _, body = api.call(None, raw="x" * 1_000_001)
    assert (code, body["error"]["code"]) == (413, "payload_too_large")
    # A version whose backend has no endpoint: 503 with Retry-After
    api.register("v1", seed=1, backend="sagemaker")
    api.set_pointer("v1")
    time.sleep(2.1)
    code, headers, body = api.chat()
    assert code == 503 and headers.get("Retry-After") and body["error"]["type"] == "server_error"
    code, _, body = api.call(None, path="/v1/nope", raw="{}")
    assert code == 404 and body["error"]


def test_the_trained_system_prompt_is_applied_and_a_different_one_is_drift(api: Api) -> None:
    api.register("v1", seed=1)
    api.set_pointer("v1")
    pinned = manifest(api.model, "v1")["system_prompt"]
    implicit = api.chat()[2]["choices"][0]["message"]["content"]
    explicit = api.chat(
        messages=[
            {"role": "system", "content": pinned},
            {"role": "user", "content": "Where is my order?"},
        ]
    )
    assert explicit[2]["choices"][0]["message"]["content"] == implicit
    other = api.chat(
        messages=[
            {"role": "system", "content": "You are a pirate."},
            {"role": "user", "content": "Where is my order?"},
        ]
    )
    assert other[0] == 200
    assert other[2]["choices"][0]["message"]["content"] != implicit

    spec = api.stack.cloud.functions["InvokeFunction"]
    spec.environment["FTSERVE_STRICT_SYSTEM_PROMPT_MODELS"] = json.dumps([api.model])
    api.stack.dispatcher.reload("InvokeFunction")
    try:
        strict = api.chat(
            messages=[
                {"role": "system", "content": "You are a pirate."},
                {"role": "user", "content": "hi"},
            ]
        )
    finally:
        del spec.environment["FTSERVE_STRICT_SYSTEM_PROMPT_MODELS"]
        import os

        os.environ.pop("FTSERVE_STRICT_SYSTEM_PROMPT_MODELS", None)
        api.stack.dispatcher.reload("InvokeFunction")
    assert strict[0] == 400 and strict[2]["error"]["param"] == "messages"

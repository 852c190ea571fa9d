"""The vLLM backend against real vLLM on CPU: load on register, distinct adapters, reconcile."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.support import adapter_files, base_model_pin, manifest, upload

pytestmark = pytest.mark.vllm


def _registry(stack: Any) -> Any:
    from ftserve.registry import Registry

    return Registry(stack.table)


def _backend(stack: Any) -> Any:
    from ftserve.config import get_settings
    from ftserve.serving import Serving

    get_settings.cache_clear()
    return Serving(get_settings())


def _chat(backend: Any, record: Any) -> str:
    body = {
        "messages": [{"role": "user", "content": "Where is my order?"}],
        "max_tokens": 12,
        "temperature": 0,
        "seed": 0,
    }
    response = backend.backend_for(record).invoke(record, body)
    assert response["model"] == record.name
    return str(response["choices"][0]["message"]["content"])


def _register(stack: Any, model: str, version: str, seed: int) -> Any:
    upload(stack.clients("s3"), stack.bucket, model, version, adapter_files(seed=seed))
    stack.dispatcher.pump()
    return _registry(stack).get_version(model, version)


def test_registered_versions_are_loaded_on_the_replica_and_serve_different_outputs(
    served: Any, vllm: Any
) -> None:
    from ftserve.backends.vllm import VllmReplica

    model = f"m-{uuid.uuid4().hex[:8]}"
    v1, v2 = _register(served, model, "v1", seed=1), _register(served, model, "v2", seed=2)

    assert (v1.status, v2.status) == ("serving", "serving")
    assert {f"{model}@v1", f"{model}@v2"} <= VllmReplica(vllm.url).loaded()
    serving = _backend(served)
    first, second = _chat(serving, v1), _chat(serving, v2)
    assert first != second
    assert _chat(serving, v1) == first  # deterministic at temperature 0
    registered = [e for e in served.events() if e["detail"].get("model") == model]
    assert [e["detail"]["status"] for e in registered] == ["serving", "serving"]


def test_adapter_vllm_refuses_is_load_failed_with_its_reason_and_nothing_else_disturbed(
    served: Any, vllm: Any
) -> None:
    from ftserve.backends.vllm import VllmReplica

    model = f"m-{uuid.uuid4().hex[:8]}"
    good = _register(served, model, "v1", seed=1)
    # A LoRA that passes the header checks but targets a module this base does not have
    files = adapter_files(seed=2)
    config = json.loads(files["adapter_config.json"]) | {"target_modules": ["q_proj", "k_projx"]}
    from tests.support import lora_weights

    files = {
        "adapter_config.json": json.dumps(config).encode(),
        "adapter_model.safetensors": lora_weights(modules=("q_proj", "k_projx")),
    }
    upload(
        served.clients("s3"),
        served.bucket,
        model,
        "v2",
        files,
        manifest(model, "v2", base_model_pin()),
    )
    served.dispatcher.pump()

    bad = _registry(served).get_version(model, "v2")
    assert bad.status == "load_failed"
    assert "k_projx" in bad.status_reason  # vLLM's own words
    assert f"{model}@v2" not in VllmReplica(vllm.url).loaded()
    assert _chat(_backend(served), good)  # the other version still serves
    assert [h.action for h in _registry(served).history(model)][-1] == "status:load_failed"


def test_restarted_replica_gets_every_adapter_back_from_the_reconciler(
    served: Any, vllm: Any
) -> None:
    from ftserve.backends.vllm import VllmReplica
    from ftserve.pointer import parameter_name

    model = f"m-{uuid.uuid4().hex[:8]}"
    _register(served, model, "v1", seed=1)
    v2 = _register(served, model, "v2", seed=2)
    before = _chat(_backend(served), v2)
    served.clients("ssm").put_parameter(
        Name=parameter_name("/ftserve/models", model), Value="v2", Type="String", Overwrite=True
    )

    vllm.restart()
    replica = VllmReplica(vllm.url)
    assert f"{model}@v2" not in replica.loaded()

    report = served.dispatcher.invoke("ReconcileFunction", {"source": "aws.events"})

    assert f"{model}@v1 on {vllm.url}" in report["loaded"]
    assert f"{model}@v2 on {vllm.url}" in report["loaded"]
    assert {f"{model}@v1", f"{model}@v2"} <= replica.loaded()
    assert _chat(_backend(served), v2) == before
    again = served.dispatcher.invoke("ReconcileFunction", {"source": "aws.events"})
    assert not [name for name in again["loaded"] if name.startswith(model)]


def test_invoke_reloads_an_adapter_the_replica_forgot_and_retries_once(
    served: Any, vllm: Any
) -> None:
    from ftserve.backends.vllm import VllmReplica

    model = f"m-{uuid.uuid4().hex[:8]}"
    v1 = _register(served, model, "v1", seed=3)
    expected = _chat(_backend(served), v1)
    VllmReplica(vllm.url).unload(v1.name)
    assert v1.name not in VllmReplica(vllm.url).loaded()

    assert _chat(_backend(served), v1) == expected
    assert v1.name in VllmReplica(vllm.url).loaded()

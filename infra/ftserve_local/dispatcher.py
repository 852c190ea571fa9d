"""Delivers EventBridge events to the functions the template's rules name, as Lambda would.

Each rule's queue is drained; the function's handler is called in process with the real event;
a handler that raises is retried (the function's MaximumRetryAttempts), then the event goes to
its on-failure queue wrapped the way Lambda destinations wrap it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ftserve_local.cloud import FunctionSpec, LocalCloud


@dataclass
class LambdaContext:
    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class Dispatcher:
    def __init__(self, cloud: LocalCloud, clients: Any) -> None:
        self.cloud = cloud
        self.clients = clients
        self._modules: dict[str, ModuleType] = {}
        # One container per function: Lambda gives a container one request at a time.
        self._locks = {name: threading.Lock() for name in cloud.functions}
        self._stop = threading.Event()
        self.failures: list[dict[str, Any]] = []

    def handler(self, function: str) -> Any:
        """The function's handler, loaded once (a warm container) from its code folder."""
        module_file, attr = self.cloud.functions[function].handler.rsplit(".", 1)
        if function not in self._modules:
            path = self.cloud.functions[function].code_dir / f"{module_file}.py"
            loader_spec = importlib.util.spec_from_file_location(f"ftserve_fn_{function}", path)
            assert loader_spec and loader_spec.loader
            module = importlib.util.module_from_spec(loader_spec)
            loader_spec.loader.exec_module(module)
            self._modules[function] = module
        return getattr(self._modules[function], attr)

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Run the handler with the real event, one invocation at a time (shared environment)."""
        with self._locks[function]:
            self.prepare(function)
            return self.invoke_unlocked(function, event)

    def prepare(self, function: str) -> None:
        """Set the function's environment (as its container would have it) and load it."""
        _apply_environment(self.cloud.functions[function])
        self.handler(function)

    def invoke_unlocked(self, function: str, event: dict[str, Any]) -> Any:
        """Concurrent invocations of one prepared function (many containers, same settings)."""
        return self.handler(function)(event, LambdaContext(function, str(uuid.uuid4())))

    def reload(self, function: str) -> None:
        """A cold start: the next invocation loads the function afresh."""
        self._modules.pop(function, None)

    def pump(self, max_rounds: int = 50) -> int:
        """Deliver everything waiting on the rules' queues; returns how many events ran."""
        delivered = 0
        for _ in range(max_rounds):
            ran = sum(
                self._drain(rule.queue_url, rule.function)
                for rule in self.cloud.rules.values()
                if rule.queue_url
            )
            delivered += ran
            if not ran:
                return delivered
        return delivered

    def run_forever(self, interval: float = 0.1) -> None:
        while not self._stop.is_set():
            if not self.pump():
                self._stop.wait(interval)

    def stop(self) -> None:
        self._stop.set()

    def _drain(self, queue_url: str, function: str) -> int:
        sqs = self.clients("sqs")
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        for message in messages:
            self._deliver(function, json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def _deliver(self, function: str, event: dict[str, Any]) -> None:
        spec = self.cloud.functions[function]
        error: Exception | None = None
        for attempt in range(spec.max_retries + 1):
            try:
                self.invoke(function, event)
                return
            except Exception as exc:  # a Lambda retries whatever the handler raised
                error = exc
                time.sleep(min(0.05 * 2**attempt, 1.0))
        record = {
            "version": "1.0",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "requestContext": {
                "functionArn": self.cloud.arns[function],
                "condition": "RetriesExhausted",
                "approximateInvokeCount": spec.max_retries + 1,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {"errorType": type(error).__name__, "errorMessage": str(error)},
        }
        self.failures.append(record)
        if spec.on_failure_queue_url:
            self.clients("sqs").send_message(
                QueueUrl=spec.on_failure_queue_url, MessageBody=json.dumps(record)
            )


def _apply_environment(spec: FunctionSpec) -> None:
    """The function's environment (functions share this process, so only changes are applied)."""
    from ftserve.config import get_settings

    changed = {k: v for k, v in spec.environment.items() if os.environ.get(k) != v}
    if changed:
        os.environ.update(changed)
        get_settings.cache_clear()

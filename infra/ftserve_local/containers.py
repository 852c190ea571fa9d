"""Warm Lambda containers, emulated: each is its own process holding one loaded invoke function
(its own pointer cache), driven with API Gateway events in a loop."""

from __future__ import annotations

import importlib.util
import json
import multiprocessing as mp
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def event(
    model: str, key: str, user: str, max_tokens: int = 1, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    body = {
        "model": model,
        "user": user,
        "max_tokens": max_tokens,
        "temperature": 0,
        "messages": [{"role": "user", "content": "hi"}],
    } | (extra or {})
    return {
        "version": "2.0",
        "routeKey": "POST /v1/chat/completions",
        "rawPath": "/v1/chat/completions",
        "rawQueryString": "",
        "isBase64Encoded": False,
        "body": json.dumps(body),
        "headers": {"authorization": f"Bearer {key}", "content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "requestId": str(uuid.uuid4()),
            "routeKey": "POST /v1/chat/completions",
            "stage": "$default",
            "http": {
                "method": "POST",
                "path": "/v1/chat/completions",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "bench",
            },
        },
    }


class Context:
    function_name = "InvokeFunction"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:InvokeFunction"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def load(app_path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, app_path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _child(conn: Any, env: dict[str, str], app_path: str, model: str, key: str, index: int) -> None:
    os.environ.update(env)
    sys.stdout = open(os.devnull, "w")  # the function's log lines (EMF) go to CloudWatch on AWS
    from ftserve.aws import client

    handler = load(Path(app_path), f"container_{index}").handler
    ssm_calls = [0]
    client("ssm").meta.events.register(
        "before-call.ssm.*", lambda **_: ssm_calls.__setitem__(0, ssm_calls[0] + 1)
    )
    handler(event(model, key, f"warm-{index}"), Context())
    while True:
        command = conn.recv()
        if command[0] == "stop":
            return
        _, seconds, rate = command
        results = []
        ssm_calls[0] = 0
        deadline = time.time() + seconds
        n = 0
        while time.time() < deadline:
            started = time.time()
            result = handler(event(model, key, f"user-{index}-{n}"), Context())
            version = (result.get("headers") or {}).get("x-ftserve-version", "")
            results.append((started, time.time(), version, result["statusCode"]))
            n += 1
            if rate:
                time.sleep(max(0.0, 1 / rate - (time.time() - started)))
        conn.send({"results": results, "ssm_calls": ssm_calls[0]})


class Container:
    def __init__(
        self,
        env: dict[str, str],
        model: str,
        key: str,
        index: int,
        app_path: Path = ROOT / "functions" / "invoke" / "app.py",
    ) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_child, args=(child, env, str(app_path), model, key, index), daemon=True
        )
        self.process.start()

    def run(self, seconds: float, rate: float | None = None) -> None:
        self.conn.send(("run", seconds, rate))

    def result(self) -> dict[str, Any]:
        return dict(self.conn.recv())

    def stop(self) -> None:
        self.conn.send(("stop",))
        self.process.join(timeout=10)

"""The whole story against `ftserve local up --detach`, as a user runs it: separate processes,
real HTTP, moto server, vLLM on CPU; alarms evaluated from the metrics the functions emit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import MODELS

pytestmark = [pytest.mark.vllm, pytest.mark.e2e]
MODEL = "acme-support"


class Stack:
    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd

    def ftserve(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "ftserve.cli", *args],
            cwd=self.cwd,
            text=True,
            capture_output=True,
            env=os.environ | {"FTSERVE_ACTOR": "e2e", "COLUMNS": "200"},
            timeout=700,
        )
        if check:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    @property
    def state(self) -> dict[str, Any]:
        return dict(json.loads((self.cwd / ".ftserve" / "local.json").read_text()))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from ftserve_local.moto_server import free_port

    stack = Stack(tmp_path_factory.mktemp("e2e"))
    ports = [str(free_port()) for _ in range(3)]
    stack.ftserve(
        "local",
        "up",
        "--detach",
        "--moto-port",
        ports[0],
        "--api-port",
        ports[1],
        "--vllm-port",
        ports[2],
    )
    state = stack.state
    yield stack
    stack.ftserve("local", "down")
    for pid in (state["pid"], state["vllm_pid"]):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_local_status_says_every_part_answers(stack: Stack) -> None:
    status = stack.ftserve("local", "status")
    for part in ("supervisor", "moto (AWS APIs)", "API gateway", "vLLM"):
        assert f"ok   {part}" in status.stdout
    state = stack.state
    for key in (
        "aws_endpoint_url",
        "api_url",
        "api_key",
        "bucket",
        "table",
        "parameter_prefix",
        "vllm_url",
        "base_model_dir",
        "base_model",
    ):
        assert state[key]


def test_the_story(stack: Stack) -> None:
    import boto3
    from openai import OpenAI

    state = stack.state
    aws = {
        "endpoint_url": state["aws_endpoint_url"],
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    s3, ssm = boto3.client("s3", **aws), boto3.client("ssm", **aws)
    app = OpenAI(base_url=state["api_url"], api_key=state["api_key"], max_retries=0)

    def version_of(user: str) -> str:
        raw = app.chat.completions.with_raw_response.create(
            model=MODEL,
            user=user,
            max_tokens=4,
            temperature=0,
            messages=[{"role": "user", "content": "hi"}],
        )
        return str(raw.headers["x-ftserve-version"]).split("@")[1]

    def eventually(check: Any, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while not check():
            assert time.monotonic() < deadline
            time.sleep(0.2)

    # A training job uploads two versions: files first, the manifest last
    for version, seed in (("v1", 1), ("v2", 2)):
        prefix = f"adapters/{MODEL}/{version}/"
        for path in (MODELS / "adapters" / f"seed-{seed}").iterdir():
            s3.put_object(Bucket=state["bucket"], Key=prefix + path.name, Body=path.read_bytes())
        s3.put_object(
            Bucket=state["bucket"],
            Key=prefix + "ftserve.json",
            Body=json.dumps(
                {
                    "model": MODEL,
                    "version": version,
                    "base_model": state["base_model"],
                    "backend": "vllm",
                    "dataset_hash": "sha256:" + "0" * 64,
                    "hyperparams": {},
                    "eval": {"accuracy": 0.9},
                    "system_prompt": "",
                }
            ).encode(),
        )
    eventually(
        lambda: (
            all(
                v["status"] == "serving"
                for v in json.loads(
                    stack.ftserve("versions", MODEL, "--json", check=False).stdout or "[]"
                )
            )
            and len(
                json.loads(stack.ftserve("versions", MODEL, "--json", check=False).stdout or "[]")
            )
            == 2
        )
    )

    stack.ftserve("promote", MODEL, "v1")
    eventually(lambda: version_of("alice") == "v1", 5)

    stack.ftserve("promote", MODEL, "v2", "--canary", "50", "--bake", "30m")
    time.sleep(2.5)
    seen = {f"user-{n}": version_of(f"user-{n}") for n in range(16)}
    assert set(seen.values()) == {"v1", "v2"}

    # v2 misbehaves: its users send negative feedback; the alarm fires from the metric data
    for user in [u for u, v in seen.items() if v == "v2"]:
        completion = app.chat.completions.create(
            model=MODEL, user=user, max_tokens=4, messages=[{"role": "user", "content": "hi"}]
        )
        if completion.model == f"{MODEL}@v2":  # (once the alarm fired, they are on v1 again)
            app.post("/feedback", body={"response_id": completion.id, "score": -1}, cast_to=object)
    eventually(lambda: all(version_of(u) == "v1" for u in seen), 15)

    # An operator's raw SSM write (to v2, having checked it) is served and recorded
    name = f"{state['parameter_prefix']}/{MODEL}/active"
    ssm.put_parameter(Name=name, Value="v2", Type="String", Overwrite=True)
    eventually(lambda: version_of("alice") == "v2", 5)

    history = json.loads(stack.ftserve("history", MODEL, "--json").stdout)
    eventually(
        lambda: (
            json.loads(stack.ftserve("history", MODEL, "--json").stdout)[-1]["action"]
            == "pointer_changed"
        ),
        5,
    )
    history = json.loads(stack.ftserve("history", MODEL, "--json").stdout)
    actions = [h["action"] for h in history if not h["action"].startswith(("registered", "status"))]
    assert actions == ["promoted", "canary_started", "auto_reverted", "pointer_changed"]
    reverted = next(h for h in history if h["action"] == "auto_reverted")
    assert reverted["actor"] == f"alarm:ftserve-{MODEL}-v2-feedback"
    status = json.loads(stack.ftserve("status", MODEL, "--json").stdout)
    assert status["pointer"] == "v2"
    assert status["versions"][1]["alarms"][f"ftserve-{MODEL}-v2-feedback"] == "ALARM"

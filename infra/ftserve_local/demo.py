"""`make demo`: the ftserve story on the embedded default, narrated with real calls.

It starts the local stack (`ftserve local up --detach`), plays a training job, an app using the
official openai client and an on-call operator, and stops everything at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / ".ftserve" / "models"
STATE = ROOT / ".ftserve" / "local.json"
MODEL = "acme-support"
console = Console(width=None if os.isatty(1) else 110, highlight=False)
timings: list[tuple[str, float, str]] = []


@contextmanager
def step(title: str) -> Iterator[list[str]]:
    console.rule(f"[bold]{title}")
    outcome: list[str] = []
    started = time.perf_counter()
    yield outcome
    elapsed = time.perf_counter() - started
    timings.append((title, elapsed, outcome[0] if outcome else ""))
    console.print(f"[dim]  took {elapsed:.2f} s[/dim]")


def ftserve(*args: str, show: bool = True) -> str:
    """Run the operator CLI as a user would (it finds the stack through .ftserve/local.json)."""
    if show:
        console.print(f"  [cyan]$ ftserve {' '.join(args)}[/cyan]")
    done = subprocess.run(
        [sys.executable, "-m", "ftserve.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ | {"FTSERVE_ACTOR": "oncall", "COLUMNS": "110"},
    )
    if done.returncode != 0:
        raise SystemExit(f"ftserve {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def upload(s3: Any, state: dict[str, Any], version: str, seed: int) -> None:
    folder = MODELS / "adapters" / f"seed-{seed}"
    prefix = f"adapters/{MODEL}/{version}/"
    for path in sorted(folder.iterdir()):
        s3.put_object(Bucket=state["bucket"], Key=prefix + path.name, Body=path.read_bytes())
        console.print(
            f"  put s3://{state['bucket']}/{prefix}{path.name} ({path.stat().st_size:,} bytes)"
        )
    manifest = {
        "model": MODEL,
        "version": version,
        "base_model": state["base_model"],
        "backend": "vllm",
        "dataset_hash": "sha256:" + f"{seed:02d}" * 32,
        "hyperparams": {"lr": 2e-4, "epochs": 3, "r": 8},
        "eval": {"accuracy": round(0.88 + seed / 50, 2)},
        "system_prompt": "You are Acme's support assistant.",
    }
    s3.put_object(
        Bucket=state["bucket"], Key=prefix + "ftserve.json", Body=json.dumps(manifest).encode()
    )
    console.print(
        f"  put s3://{state['bucket']}/{prefix}ftserve.json [dim](the manifest, last: the commit point)[/dim]"
    )


def wait_for(predicate: Any, timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            raise SystemExit(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.1)
    return time.monotonic() - started


def main() -> None:
    console.print(
        "[bold]ftserve demo[/bold]: a fine-tune becomes a versioned API with rollback in seconds\n"
    )
    with step(
        "Start the local stack: moto + the template's resources + vLLM on CPU + API gateway"
    ) as out:
        up = subprocess.run(
            [sys.executable, "-m", "ftserve.cli", "local", "up", "--detach"],
            cwd=ROOT,
            env=os.environ | {"COLUMNS": "110"},
        )
        if up.returncode != 0:
            raise SystemExit("the local stack did not start")
        out.append("up")
    try:
        story(json.loads(STATE.read_text()))
    finally:
        subprocess.run([sys.executable, "-m", "ftserve.cli", "local", "down"], cwd=ROOT)
    summary = Table(title="ftserve demo: summary")
    for column in ("step", "result", "time"):
        summary.add_column(column, justify="right" if column == "time" else "left")
    for title, elapsed, result in timings:
        summary.add_row(title, result, f"{elapsed:.2f} s")
    console.print(summary)


def story(state: dict[str, Any]) -> None:
    import boto3
    from openai import OpenAI

    os.environ |= {
        "AWS_ENDPOINT_URL": state["aws_endpoint_url"],
        "AWS_DEFAULT_REGION": state["region"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    s3, ssm = boto3.client("s3"), boto3.client("ssm")
    ddb_status = _status_reader(state)
    app = OpenAI(base_url=state["api_url"], api_key=state["api_key"], max_retries=0)

    def chat(user: str, content: str = "Where is my order?") -> tuple[str, Any]:
        raw = app.chat.completions.with_raw_response.create(
            model=MODEL,
            user=user,
            max_tokens=12,
            temperature=0,
            messages=[{"role": "user", "content": content}],
        )
        return raw.headers["x-ftserve-version"], raw.parse()

    for version, seed in (("v1", 1), ("v2", 2)):
        with step(
            f"A training job uploads {MODEL} {version}: PEFT LoRA files, then the manifest"
        ) as out:
            upload(s3, state, version, seed)
            waited = wait_for(
                lambda v=version: ddb_status(v) == "serving", 60, f"{version} to serve"
            )
            console.print(
                f"  registered, loaded on vLLM as {MODEL}@{version}: status serving "
                f"{waited:.2f} s after the manifest landed"
            )
            out.append(f"{MODEL}@{version} serving")
    with step("Lineage: every version is pinned to its exact base and files") as out:
        console.print(ftserve("show", MODEL, "v1"))
        out.append("shown")
    with step("Promote v1 (the operator CLI writes the SSM pointer)") as out:
        console.print("  " + ftserve("promote", MODEL, "v1", "--reason", "first release").strip())
        out.append("active: v1")
    with step("An app calls the API with the official openai client") as out:
        console.print(
            f'  [cyan]OpenAI(base_url="{state["api_url"]}", api_key=…).chat.completions.create('
            f'model="{MODEL}", …)[/cyan]'
        )
        wait_for(lambda: chat("alice")[0] == f"{MODEL}@v1", 10, "v1 to serve")
        version, completion = chat("alice")
        console.print(
            f"  x-ftserve-version: [bold]{version}[/bold]; body model: {completion.model}"
        )
        console.print(
            f"  reply (a tiny random model, so gibberish): {completion.choices[0].message.content!r}"
        )
        out.append(f"served by {version}")
    with step("Canary: v2 gets 50% of callers (sticky per user)") as out:
        console.print(
            "  " + ftserve("promote", MODEL, "v2", "--canary", "50", "--bake", "30m").strip()
        )
        time.sleep(2.5)  # the pointer TTL
        seen: dict[str, str] = {}
        for n in range(20):
            seen[f"user-{n}"] = chat(f"user-{n}")[0]
        counts = Counter(seen.values())
        console.print("  20 users: " + ", ".join(f"{v}: {n}" for v, n in sorted(counts.items())))
        out.append(", ".join(f"{v.split('@')[1]}×{n}" for v, n in sorted(counts.items())))
    with step(
        "v2 misbehaves: users send negative feedback; its alarm fires; traffic goes back by itself"
    ) as out:
        v2_users = [u for u, v in seen.items() if v.endswith("@v2")]
        bad = 0
        for user in v2_users:
            version, completion = chat(user)
            if version.endswith("@v2"):  # once the alarm fired, they are on v1 again
                app.post(
                    "/feedback", body={"response_id": completion.id, "score": -1}, cast_to=object
                )
                bad += 1
        console.print(f"  {bad} × POST /v1/feedback score=-1 for {MODEL}@v2 responses")
        fired = time.monotonic()
        wait_for(
            lambda: all(chat(u)[0] == f"{MODEL}@v1" for u in v2_users[:3]), 30, "the auto-revert"
        )
        console.print(
            f"  ftserve-{MODEL}-v2-feedback → ALARM → auto-revert: every caller on v1 again "
            f"{time.monotonic() - fired:.2f} s after the last feedback"
        )
        out.append("auto-reverted to v1")
    with step("A fixed v3 is uploaded and promoted") as out:
        upload(s3, state, "v3", 3)
        wait_for(lambda: ddb_status("v3") == "serving", 60, "v3 to serve")
        console.print("  " + ftserve("promote", MODEL, "v3", "--reason", "fixes v2").strip())
        wait_for(lambda: chat("alice")[0] == f"{MODEL}@v3", 10, "v3 to serve")
        out.append("active: v3")
    with step("On-call rolls back with a raw SSM write (aws ssm put-parameter --overwrite)") as out:
        name = f"{state['parameter_prefix']}/{MODEL}/active"
        console.print(
            f"  [cyan]$ aws ssm put-parameter --name {name} --value v1 --overwrite[/cyan]"
        )
        written = time.monotonic()
        ssm.put_parameter(Name=name, Value="v1", Type="String", Overwrite=True)
        wait_for(lambda: chat("alice")[0] == f"{MODEL}@v1", 10, "the rollback")
        took = time.monotonic() - written
        console.print(f"  every response from {MODEL}@v1 again {took:.2f} s after the write")
        out.append(f"v1 served in {took:.2f} s")
    with step("A typo in the pointer never takes traffic down") as out:
        console.print(
            f"  [cyan]$ aws ssm put-parameter --name {name} --value v9 --overwrite[/cyan]"
        )
        ssm.put_parameter(Name=name, Value="v9", Type="String", Overwrite=True)
        wait_for(
            lambda: ssm.get_parameter(Name=name)["Parameter"]["Value"] == "v1", 10, "the guard"
        )
        version, _ = chat("alice")
        console.print(
            f"  the pointer guard put v1 back (PointerRejected); still served by {version}"
        )
        out.append("reverted by the guard")
    with step(f"ftserve history {MODEL}: every step, with actor and reason") as out:
        console.print(ftserve("history", MODEL))
        out.append("recorded")


def _status_reader(state: dict[str, Any]) -> Any:
    import boto3

    ddb = boto3.client("dynamodb")

    def status(version: str) -> str | None:
        item = ddb.get_item(
            TableName=state["table"],
            Key={"pk": {"S": f"MODEL#{MODEL}"}, "sk": {"S": f"V#{int(version[1:]):09d}"}},
        ).get("Item")
        return item["status"]["S"] if item else None

    return status


if __name__ == "__main__":
    main()

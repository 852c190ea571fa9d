"""`ftserve merge`: the merged model's logits equal base + adapter logits."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support import MODELS, ROOT, adapter_files, upload

pytestmark = pytest.mark.vllm
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"

COMPARE = """
import sys, torch
from peft import PeftModel
from transformers import AutoModelForCausalLM
base_dir, adapter_dir, merged_dir = sys.argv[1:4]
ids = torch.tensor([[1, 5, 9, 17, 33, 65, 2]])
with torch.no_grad():
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), adapter_dir)
    base_plus_adapter = peft(ids).logits
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)(ids).logits
    plain = AutoModelForCausalLM.from_pretrained(base_dir)(ids).logits
print((merged - base_plus_adapter).abs().max().item(), (plain - base_plus_adapter).abs().max().item())
"""


def test_merged_model_matches_base_plus_adapter(aws: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ftserve.cli import app
    from ftserve.registry import Registry

    model = f"mg-{uuid.uuid4().hex[:8]}"
    upload(aws.clients("s3"), aws.bucket, model, "v1", adapter_files(seed=1))
    aws.dispatcher.pump()

    result = CliRunner().invoke(
        app,
        [
            "merge",
            model,
            "v1",
            "--base-dir",
            str(MODELS / "tiny-llama"),
            "--python",
            str(VLLM_PYTHON),
            "--endpoint-url",
            aws.url,
            "--table",
            aws.table,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    merged = json.loads(result.output)
    record = Registry(aws.table).get_version(model, "v1")
    assert record.merged is not None and record.merged.uri == merged["uri"]
    assert "model.safetensors" in merged["files"]

    out = tmp_path / "merged"
    out.mkdir()
    for name in merged["files"]:
        aws.clients("s3").download_file(aws.bucket, f"merged/{model}/v1/{name}", str(out / name))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    for name, data in adapter_files(seed=1).items():
        (adapter / name).write_bytes(data)
    compared = subprocess.run(
        [str(VLLM_PYTHON), "-c", COMPARE, str(MODELS / "tiny-llama"), str(adapter), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    merged_diff, adapter_effect = map(float, compared.stdout.split())
    assert merged_diff < 1e-4
    assert adapter_effect > 1e-2  # the adapter really changes the logits


def test_merge_refuses_a_base_that_is_not_the_pinned_one(aws: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ftserve.cli import app

    model = f"mg-{uuid.uuid4().hex[:8]}"
    upload(aws.clients("s3"), aws.bucket, model, "v1", adapter_files(seed=1))
    aws.dispatcher.pump()
    (tmp_path / "ftserve-base.json").write_text(
        json.dumps({"base_model": "ftserve/tiny-llama@other"})
    )
    result = CliRunner().invoke(
        app,
        [
            "merge",
            model,
            "v1",
            "--base-dir",
            str(tmp_path),
            "--endpoint-url",
            aws.url,
            "--table",
            aws.table,
        ],
    )
    assert result.exit_code == 1
    assert "is pinned to" in result.output

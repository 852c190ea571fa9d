"""Merges a LoRA adapter into its base (peft `merge_and_unload`) and saves a standalone model.

Runs where torch and peft are installed (.venv-vllm here; a GPU batch job in production):
    python infra/merge.py --base-dir BASE --adapter-dir ADAPTER --out OUT
Prints a JSON line with the files written and their SHA-256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path


def merge(base_dir: Path, adapter_dir: Path, out: Path) -> dict[str, str]:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir, torch_dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out, safe_serialization=True)
    for name in (
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "special_tokens_map.json",
        "generation_config.json",
    ):
        if (base_dir / name).exists() and not (out / name).exists():
            shutil.copy(base_dir / name, out / name)
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.iterdir())
        if p.is_file()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-dir", type=Path, required=True)
    parser.add_argument("--adapter-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(json.dumps({"files": merge(args.base_dir, args.adapter_dir, args.out)}))


if __name__ == "__main__":
    main()

"""Merge one version into its pinned base: a standalone model for one tune at high volume.

What is lost: multi-adapter serving (one base, many tunes) and instant rollback by pointer.
The merge itself runs where torch and peft are (`infra/merge.py`); this side stages the exact
adapter bytes, checks the base is the pinned one, uploads the result and records it.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ftserve.errors import FtserveError
from ftserve.registry import MergedArtifact, Registry, VersionRecord, now_iso
from ftserve.staging import stage

MERGE_SCRIPT = Path(__file__).resolve().parents[2] / "infra" / "merge.py"


def merged_prefix(record: VersionRecord) -> str:
    return f"merged/{record.model}/{record.version}/"


def merge_version(
    registry: Registry, record: VersionRecord, s3: Any, base_dir: Path, python: str, actor: str
) -> MergedArtifact:
    if record.manifest.backend == "openai":
        raise FtserveError(f"{record.name} is a hosted fine-tune: there are no weights to merge")
    info = base_dir / "ftserve-base.json"
    if info.exists():
        local = json.loads(info.read_text())["base_model"]
        if local != record.manifest.base_model:
            raise FtserveError(
                f"{base_dir} holds {local}, but {record.name} is pinned to "
                f"{record.manifest.base_model}"
            )
    bucket = record.adapter_uri.removeprefix("s3://").split("/", 1)[0]
    with tempfile.TemporaryDirectory(prefix="ftserve-merge-") as work:
        adapter = stage(record, s3, Path(work) / "adapters")
        out = Path(work) / "merged"
        done = subprocess.run(
            [
                python,
                str(MERGE_SCRIPT),
                "--base-dir",
                str(base_dir),
                "--adapter-dir",
                str(adapter),
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise FtserveError(f"merge failed: {done.stderr.strip()[-2000:]}")
        files: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])["files"]
        prefix = merged_prefix(record)
        for name in files:
            s3.upload_file(str(out / name), bucket, prefix + name)
    merged = MergedArtifact(uri=f"s3://{bucket}/{prefix}", files=files, created_at=now_iso())
    registry.record_merged(record.model, record.version, merged, actor)
    return merged

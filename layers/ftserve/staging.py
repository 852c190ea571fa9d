"""Stages a version's files where serving replicas can read them (EFS in production).

Files are fetched by their pinned S3 object version, checked against the recorded SHA-256,
written to a temporary folder and renamed into place: a replica never sees half an adapter.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ftserve.errors import FtserveError
from ftserve.manifest import MANIFEST_FILE
from ftserve.registry import VersionRecord


def stage(record: VersionRecord, s3: Any, adapter_dir: str | Path) -> Path:
    root = Path(adapter_dir)
    dest = root / record.name
    if dest.is_dir() and _matches(dest, record):
        return dest
    root.mkdir(parents=True, exist_ok=True)
    bucket, prefix = record.adapter_uri.removeprefix("s3://").split("/", 1)
    tmp = Path(tempfile.mkdtemp(prefix=f".{record.name}.", dir=root))
    try:
        for name, info in record.files.items():
            if name == MANIFEST_FILE:
                continue
            extra = {"VersionId": info.s3_version_id} if info.s3_version_id else {}
            body = s3.get_object(Bucket=bucket, Key=prefix + name, **extra)["Body"]
            sha = hashlib.sha256()
            with open(tmp / name, "wb") as out:
                for chunk in body.iter_chunks(1024 * 1024):
                    sha.update(chunk)
                    out.write(chunk)
            if sha.hexdigest() != info.sha256:
                raise FtserveError(f"{record.name}/{name} does not match its recorded SHA-256")
        os.chmod(tmp, 0o755)
        if dest.exists():
            shutil.rmtree(dest)
        os.rename(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _matches(folder: Path, record: VersionRecord) -> bool:
    for name, info in record.files.items():
        if name == MANIFEST_FILE:
            continue
        path = folder / name
        if not path.is_file():
            return False
        with open(path, "rb") as staged:  # streamed: adapters can be gigabytes
            if hashlib.file_digest(staged, "sha256").hexdigest() != info.sha256:
                return False
    return True

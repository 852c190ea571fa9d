"""Validates an uploaded adapter without ever loading it: manifest, PEFT config, safetensors header.

Every check runs and every problem is reported, so a training job learns all that is wrong in
one round trip. Pickle files are refused by name and never opened.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from ftserve.manifest import (
    CONFIG_FILE,
    MANIFEST_FILE,
    PICKLE_SUFFIXES,
    WEIGHTS_FILE,
    Manifest,
)

DTYPE_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "U16": 2,
    "U32": 4,
    "U64": 8,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}
MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors format's own limit
SAFE_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
LORA_TENSOR = re.compile(r"^(?P<module>.+)\.lora_(?P<side>A|B)(?:\.(?P<adapter>[^.]+))?\.weight$")

ReadRange = Callable[[int, int], bytes]  # (start, end exclusive) → bytes


def too_large(what: str, size: int, limit: int) -> str:
    return f"{what} is {size} bytes, over the {limit}-byte limit"


def manifest_errors(raw: bytes, max_bytes: int) -> tuple[Manifest | None, list[str]]:
    """Parse `ftserve.json`; unknown keys and every invalid field become a reason."""
    if len(raw) > max_bytes:
        return None, [too_large("manifest", len(raw), max_bytes)]
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, [f"manifest is not valid JSON: {exc}"]
    if not isinstance(data, dict):
        return None, ["manifest must be a JSON object"]
    try:
        return Manifest.model_validate(data), []
    except ValidationError as exc:
        return None, [_describe(err) for err in exc.errors()]


def _describe(err: Mapping[str, Any]) -> str:
    field = ".".join(str(p) for p in err.get("loc", ())) or "manifest"
    if err.get("type") == "extra_forbidden":
        return f"manifest has unknown key {field!r}"
    if err.get("type") == "missing":
        return f"manifest is missing {field!r}"
    message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    return f"manifest field {field!r}: {message}"


def listing_errors(
    files: Mapping[str, int], manifest: Manifest | None, max_bytes: int
) -> list[str]:
    """Check the names and sizes of the files beside the manifest (`files`: name → bytes)."""
    reasons = []
    for name in sorted(files):
        if name.lower().endswith(PICKLE_SUFFIXES):
            reasons.append(
                f"pickle file {name!r} refused: weights must be safetensors (never loaded)"
            )
        elif not SAFE_FILE_NAME.fullmatch(name):
            reasons.append(
                f"file name {name!r} refused: only plain names, no folders or odd characters"
            )
    total = sum(size for name, size in files.items() if name != MANIFEST_FILE)
    if total > max_bytes:
        reasons.append(f"adapter files total {total} bytes, over the {max_bytes}-byte limit")
    if manifest is None or manifest.has_weights:
        declared = manifest.files if manifest is not None and manifest.files else files
        for required in (CONFIG_FILE, WEIGHTS_FILE):
            if required not in declared or required not in files:
                reasons.append(f"missing file {required!r} beside {MANIFEST_FILE}")
    return reasons


def adapter_config_errors(
    raw: bytes, manifest: Manifest | None
) -> tuple[dict[str, Any], list[str]]:
    """`adapter_config.json` must be a PEFT LoRA config for the manifest's base model."""
    try:
        config = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return {}, [f"{CONFIG_FILE} is not valid JSON: {exc}"]
    if not isinstance(config, dict):
        return {}, [f"{CONFIG_FILE} must be a JSON object"]
    reasons = []
    if config.get("peft_type") != "LORA":
        reasons.append(f"{CONFIG_FILE}: peft_type is {config.get('peft_type')!r}, expected 'LORA'")
    rank = config.get("r")
    if not isinstance(rank, int) or isinstance(rank, bool) or not 0 < rank <= 1024:
        reasons.append(f"{CONFIG_FILE}: rank r={rank!r} must be an integer from 1 to 1024")
    targets = config.get("target_modules")
    if not targets or not isinstance(targets, list | str):
        reasons.append(f"{CONFIG_FILE}: target_modules must name the adapted modules")
    base = config.get("base_model_name_or_path")
    if manifest is not None and base != manifest.base_id:
        reasons.append(
            f"wrong base: {CONFIG_FILE} says base_model_name_or_path={base!r} but the manifest "
            f"pins {manifest.base_model!r} (expected {manifest.base_id!r})"
        )
    return config, reasons


def safetensors_errors(size: int, read: ReadRange, config: Mapping[str, Any]) -> list[str]:
    """Parse the header (never the weights) and check the tensors are LoRA A/B pairs of rank r."""
    where = WEIGHTS_FILE
    if size < 8:
        return [f"{where}: corrupt safetensors header (file is {size} bytes)"]
    (header_len,) = struct.unpack("<Q", read(0, 8))
    if header_len > MAX_HEADER_BYTES or 8 + header_len > size:
        return [
            f"{where}: corrupt safetensors header (declares {header_len} header bytes, "
            f"file has {size})"
        ]
    try:
        header = json.loads(read(8, 8 + header_len))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"{where}: corrupt safetensors header (not JSON: {exc})"]
    if not isinstance(header, dict):
        return [f"{where}: corrupt safetensors header (not an object)"]
    header.pop("__metadata__", None)
    data_len = size - 8 - header_len
    reasons = _layout_errors(header, data_len)
    if reasons:
        return [f"{where}: corrupt safetensors header ({r})" for r in reasons[:5]]
    return _lora_errors(header, config)


def _layout_errors(header: Mapping[str, Any], data_len: int) -> list[str]:
    reasons, spans = [], []
    for name, info in header.items():
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            count = 1
            for dim in shape:
                if not isinstance(dim, int) or dim < 0:
                    raise ValueError
                count *= dim
            if not (isinstance(begin, int) and isinstance(end, int)):
                raise ValueError
        except (KeyError, TypeError, ValueError):
            reasons.append(f"tensor {name!r} has a malformed entry")
            continue
        if dtype not in DTYPE_BYTES:
            reasons.append(f"tensor {name!r} has unknown dtype {dtype!r}")
        elif not 0 <= begin <= end <= data_len:
            reasons.append(
                f"tensor {name!r} offsets {begin}..{end} lie outside the {data_len} data bytes"
            )
        elif end - begin != count * DTYPE_BYTES[dtype]:
            reasons.append(
                f"tensor {name!r} declares {count} {dtype} values in {end - begin} bytes"
            )
        else:
            spans.append((begin, end))
    spans.sort()
    for (_, prev_end), (begin, _) in zip(spans, spans[1:], strict=False):
        if begin < prev_end:
            reasons.append("tensors overlap in the data section")
            break
    return reasons


def _lora_errors(header: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
    rank = config.get("r")
    allowed_ranks = {rank} | set((config.get("rank_pattern") or {}).values())
    reasons: list[str] = []
    pairs: dict[str, dict[str, list[int]]] = {}
    for name, info in header.items():
        match = LORA_TENSOR.match(name)
        if not match:
            reasons.append(f"{WEIGHTS_FILE}: tensor {name!r} is not a LoRA A/B weight")
            continue
        pairs.setdefault(match["module"], {})[match["side"]] = list(info["shape"])
    if not pairs and not reasons:
        reasons.append(f"{WEIGHTS_FILE}: holds no LoRA tensors")
    wrong_rank: dict[int, list[str]] = {}
    for module, sides in sorted(pairs.items()):
        if set(sides) != {"A", "B"}:
            missing = ({"A", "B"} - set(sides)).pop()
            reasons.append(f"{WEIGHTS_FILE}: {module} has no lora_{missing} (A/B must pair)")
            continue
        a, b = sides["A"], sides["B"]
        if len(a) != 2 or len(b) != 2 or a[0] != b[1]:
            reasons.append(f"{WEIGHTS_FILE}: {module} A{a}/B{b} do not form a LoRA pair")
        elif a[0] not in allowed_ranks:
            wrong_rank.setdefault(a[0], []).append(module)
    for found, modules in sorted(wrong_rank.items()):
        reasons.append(
            f"wrong rank: {len(modules)} module(s) have rank {found} (e.g. {modules[0]}) "
            f"but {CONFIG_FILE} declares r={rank}"
        )
    return reasons

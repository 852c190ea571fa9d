"""Adapter validation: PEFT config and safetensors header checked without loading any weights."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftserve.manifest import Manifest
from ftserve.validation import adapter_config_errors, listing_errors, safetensors_errors
from tests.support import adapter_config, lora_weights, manifest

CONFIG = json.loads(adapter_config())
MANIFEST = Manifest.model_validate(manifest("acme", "v1"))


def check(data: bytes, config: dict[str, object] = CONFIG) -> list[str]:
    return safetensors_errors(len(data), lambda start, end: data[start:end], config)


def with_header(header: dict[str, object], data: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def test_lora_pairs_of_the_declared_rank_pass() -> None:
    assert check(lora_weights(rank=8)) == []


def test_wrong_rank_is_named() -> None:
    reasons = check(lora_weights(rank=4))
    assert reasons and all("wrong rank" in r and "r=8" in r for r in reasons)


def test_unpaired_lora_a_is_named() -> None:
    header = {
        "base_model.model.x.q_proj.lora_A.weight": {
            "dtype": "F32",
            "shape": [8, 4],
            "data_offsets": [0, 128],
        }
    }
    assert "has no lora_B" in check(with_header(header, b"\0" * 128))[0]


def test_non_lora_tensor_is_named() -> None:
    header = {
        "model.embed_tokens.weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
    }
    assert "is not a LoRA A/B weight" in check(with_header(header, b"\0" * 16))[0]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x01\x02", "file is 2 bytes"),
        (struct.pack("<Q", 10**12) + b"{}", "declares 1000000000000 header bytes"),
        (struct.pack("<Q", 4) + b"nope", "not JSON"),
        (
            with_header(
                {"t.lora_A.weight": {"dtype": "F32", "shape": [8, 4], "data_offsets": [0, 4096]}}
            ),
            "outside the 0 data bytes",
        ),
        (
            with_header(
                {
                    "t.lora_A.weight": {
                        "dtype": "F32",
                        "shape": [10**9, 10**9],
                        "data_offsets": [0, 16],
                    }
                },
                b"\0" * 16,
            ),
            "declares",
        ),
        (
            with_header(
                {"t.lora_A.weight": {"dtype": "F99", "shape": [1], "data_offsets": [0, 1]}}, b"\0"
            ),
            "unknown dtype",
        ),
        (with_header({"t.lora_A.weight": {"shape": [1]}}), "malformed entry"),
        (
            with_header(
                {
                    "a.lora_A.weight": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                    "a.lora_B.weight": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]},
                },
                b"\0" * 6,
            ),
            "overlap",
        ),
    ],
)
def test_lying_or_corrupt_headers_are_refused(data: bytes, expected: str) -> None:
    reasons = check(data)
    assert reasons and "corrupt safetensors header" in reasons[0]
    assert any(expected in r for r in reasons), reasons


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=256))
def test_any_bytes_give_reasons_never_a_crash(data: bytes) -> None:
    assert isinstance(check(data), list)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=12,
    )
)
def test_any_json_header_gives_reasons_never_a_crash(header: object) -> None:
    raw = json.dumps(header).encode()
    assert isinstance(check(struct.pack("<Q", len(raw)) + raw), list)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["peft_type", "r", "target_modules", "base_model_name_or_path", "rank_pattern"]
        ),
        st.none() | st.integers() | st.text(max_size=5) | st.lists(st.text(max_size=3)),
    )
)
def test_any_adapter_config_gives_reasons_never_a_crash(config: dict[str, object]) -> None:
    parsed, reasons = adapter_config_errors(json.dumps(config).encode(), MANIFEST)
    assert reasons  # none of these is a complete LoRA config for the pinned base


def test_config_for_another_base_is_named() -> None:
    _, reasons = adapter_config_errors(adapter_config(base_id="meta-llama/Llama-3.1-8B"), MANIFEST)
    assert reasons == [
        "wrong base: adapter_config.json says base_model_name_or_path='meta-llama/Llama-3.1-8B' but "
        "the manifest pins 'ftserve/tiny-llama@test' (expected 'ftserve/tiny-llama')"
    ]


def test_non_lora_peft_config_is_named() -> None:
    body = json.loads(adapter_config()) | {"peft_type": "IA3"}
    _, reasons = adapter_config_errors(json.dumps(body).encode(), MANIFEST)
    assert "expected 'LORA'" in reasons[0]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("adapter_model.bin", "pickle file"),
        ("training_args.pt", "pickle file"),
        ("optimizer.PKL", "pickle file"),
        ("../escape", "only plain names"),
        ("sub/adapter.safetensors", "only plain names"),
        ("ünïcode.json", "only plain names"),
    ],
)
def test_pickles_and_odd_names_beside_the_manifest_are_refused(name: str, expected: str) -> None:
    files = {"adapter_config.json": 10, "adapter_model.safetensors": 10, name: 10}
    assert any(expected in r for r in listing_errors(files, MANIFEST, 10**6))


def test_total_size_limit() -> None:
    files = {"adapter_config.json": 10, "adapter_model.safetensors": 10**6}
    assert listing_errors(files, MANIFEST, 1000) == [
        "adapter files total 1000010 bytes, over the 1000-byte limit"
    ]

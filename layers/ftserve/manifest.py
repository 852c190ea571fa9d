"""The manifest contract (`ftserve.json`) and the names it carries."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
VERSION_PATTERN = r"^v[1-9][0-9]{0,8}$"
SHA256_PATTERN = r"^sha256:[0-9a-f]{64}$"
# `<id>@<revision>`: a hub-style id (org/name) pinned to one revision.
BASE_MODEL_PATTERN = (
    r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?@[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
)
HOSTED_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,255}$"

MANIFEST_FILE = "ftserve.json"
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")

Backend = Literal["vllm", "sagemaker", "openai"]


def check_model_name(name: str) -> str:
    if not re.fullmatch(NAME_PATTERN, name):
        raise ValueError(
            f"model name {name!r} must be lowercase [a-z0-9][a-z0-9-]{{0,62}} (e.g. 'acme-support')"
        )
    return name


def check_version(version: str) -> str:
    if version == "latest":
        raise ValueError("version 'latest' is refused: versions are immutable numbers (v1, v2, …)")
    if not re.fullmatch(VERSION_PATTERN, version):
        raise ValueError(f"version {version!r} must be 'v' followed by a number (v1, v2, …)")
    return version


def version_number(version: str) -> int:
    return int(check_version(version)[1:])


class Manifest(BaseModel):
    """`ftserve.json`: uploaded last, it is the commit point of an adapter version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    version: str
    base_model: str = Field(
        description="<id>@<revision>, e.g. meta-llama/Llama-3.1-8B-Instruct@2025-07"
    )
    backend: Backend
    dataset_hash: str = Field(pattern=SHA256_PATTERN)
    hyperparams: dict[str, Any]
    eval: dict[str, float]
    system_prompt: str = Field(max_length=32_768)
    hosted_model_id: str | None = Field(default=None, pattern=HOSTED_ID_PATTERN)
    # Optional: the SHA-256 of each file beside the manifest. Registration then pins each file to
    # the object version with exactly those bytes, so concurrent uploads can never mix.
    files: dict[str, str] | None = None
    # For OpenAI-compatible platforms other than OpenAI (Together, Fireworks, …): where to call,
    # and the name of the secret holding the key (an SSM SecureString path or a Secrets Manager
    # name) — never the key itself.
    hosted_base_url: str | None = Field(default=None, max_length=2048)
    hosted_api_key_secret: str | None = Field(default=None, pattern=r"^[A-Za-z0-9/_+=.@:-]{1,512}$")

    @field_validator("model")
    @classmethod
    def _model_name(cls, value: str) -> str:
        return check_model_name(value)

    @field_validator("version")
    @classmethod
    def _version_name(cls, value: str) -> str:
        return check_version(value)

    @field_validator("base_model")
    @classmethod
    def _pinned_base(cls, value: str) -> str:
        if not re.fullmatch(BASE_MODEL_PATTERN, value):
            raise ValueError(
                f"base_model {value!r} must be pinned as <id>@<revision> "
                "(e.g. meta-llama/Llama-3.1-8B-Instruct@2025-07)"
            )
        return value

    @field_validator("files")
    @classmethod
    def _file_digests(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return value
        for name, digest in value.items():
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", name) or name == MANIFEST_FILE:
                raise ValueError(f"files: {name!r} is not a plain file name beside the manifest")
            if not re.fullmatch(SHA256_PATTERN, digest):
                raise ValueError(f"files: {name!r} digest must be sha256:<64 hex>")
        return value

    @field_validator("hosted_base_url")
    @classmethod
    def _safe_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        loopback = parts.hostname in {"127.0.0.1", "localhost", "::1"}
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ValueError("hosted_base_url must be https:// (plain http only on loopback)")
        if not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError(
                "hosted_base_url must be a plain URL (no credentials, query or fragment)"
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _hosted_id_only_for_openai(self) -> Manifest:
        if self.backend == "openai" and not self.hosted_model_id:
            raise ValueError("backend 'openai' needs hosted_model_id (the platform's fine-tune id)")
        hosted = (self.hosted_model_id, self.hosted_base_url, self.hosted_api_key_secret)
        if self.backend != "openai" and any(hosted):
            raise ValueError(
                f"hosted_model_id, hosted_base_url and hosted_api_key_secret are only "
                f"for backend 'openai', not {self.backend!r}"
            )
        return self

    @property
    def base_id(self) -> str:
        return self.base_model.rsplit("@", 1)[0]

    @property
    def has_weights(self) -> bool:
        return self.backend != "openai"


def adapter_prefix(model: str, version: str) -> str:
    return f"adapters/{model}/{version}/"


def parse_manifest_key(key: str) -> tuple[str, str]:
    """`adapters/<model>/<version>/ftserve.json` → (model, version), or ValueError naming why."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != "adapters" or parts[3] != MANIFEST_FILE:
        raise ValueError(f"key {key!r} is not adapters/<model>/<version>/{MANIFEST_FILE}")
    return check_model_name(parts[1]), check_version(parts[2])

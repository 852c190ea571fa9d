"""Configuration is a model: environment variables read once, validated when a handler starts."""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ftserve.alarms import AlarmThresholds


class SageMakerTarget(BaseModel):
    """A SageMaker endpoint whose base inference component serves one base model."""

    endpoint_name: str
    base_component_name: str
    artifact_prefix: str = "sagemaker/"


class Settings(BaseSettings):
    """Everything the functions and the CLI read from the environment (prefix `FTSERVE_`)."""

    model_config = SettingsConfigDict(
        env_prefix="FTSERVE_", extra="ignore", frozen=True, env_nested_delimiter="__"
    )

    table_name: str = "ftserve-registry"
    bucket_name: str = "ftserve-adapters"
    idempotency_table_name: str | None = None
    event_bus_name: str = "default"
    parameter_prefix: str = "/ftserve/models"
    max_adapter_bytes: int = Field(default=2 * 1024**3, gt=0)
    max_manifest_bytes: int = Field(default=256 * 1024, gt=0)
    # Serving: vLLM replicas per base model, keyed by the pinned base (`id@revision`) or its id.
    vllm_endpoints: dict[str, list[str]] = {}
    adapter_dir: str = "/mnt/adapters"  # where registration stages files (EFS mount)
    replica_adapter_dir: str | None = None  # the same folder as replicas see it
    sagemaker_targets: dict[str, SageMakerTarget] = {}
    keep_warm: int = Field(default=3, ge=1)
    # The invoke path.
    pointer_ttl_s: float = Field(default=2.0, gt=0, le=300)
    backend_timeout_s: float = Field(default=25.0, gt=0, le=900)
    max_request_bytes: int = Field(default=1_000_000, gt=0)
    strict_system_prompt_models: list[str] = []
    # Hosted fine-tunes arriving by webhook (names of secrets, never the values).
    openai_base_url: str = "https://api.openai.com/v1"
    openai_webhook_secret_name: str | None = None
    openai_api_key_secret: str | None = None
    # Per-version alarms (FTSERVE_ALARMS__ERROR_RATE_PERCENT, …).
    alarms: AlarmThresholds = AlarmThresholds()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

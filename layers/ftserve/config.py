"""Configuration is a model: environment variables read once, validated when a handler starts."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the functions and the CLI read from the environment (prefix `FTSERVE_`)."""

    model_config = SettingsConfigDict(env_prefix="FTSERVE_", extra="ignore", frozen=True)

    table_name: str = "ftserve-registry"
    bucket_name: str = "ftserve-adapters"
    idempotency_table_name: str | None = None
    event_bus_name: str = "default"
    parameter_prefix: str = "/ftserve/models"
    max_adapter_bytes: int = Field(default=2 * 1024**3, gt=0)
    max_manifest_bytes: int = Field(default=256 * 1024, gt=0)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

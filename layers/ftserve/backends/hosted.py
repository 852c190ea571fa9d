"""Hosted fine-tunes on any OpenAI-compatible platform (OpenAI, Together, Fireworks).

The version record holds the platform's model id; nothing is loaded by ftserve. The key comes
from an SSM SecureString or Secrets Manager (named by the manifest), never from the manifest.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ftserve.backends.http import JsonEndpoint, error_text
from ftserve.errors import BackendUnavailable, BadRequest, LoadFailed
from ftserve.registry import VersionRecord

OPENAI_URL = "https://api.openai.com/v1"
# OpenAI's fine-tune ids: ft:<base>:<org>[:<suffix>]:<id>
OPENAI_FT_ID = re.compile(r"^ft:[A-Za-z0-9._-]+:[A-Za-z0-9_-]*(:[A-Za-z0-9._-]*)?:[A-Za-z0-9]+$")


def api_key(secret: str | None) -> str | None:
    """Read the platform key (cached 5 min): `/path` is an SSM SecureString, else a secret name."""
    if not secret:
        return None
    from aws_lambda_powertools.utilities import parameters

    if secret.startswith("/"):
        return str(parameters.get_parameter(secret, decrypt=True, max_age=300))
    return str(parameters.get_secret(secret, max_age=300))


class HostedBackend:
    def __init__(
        self,
        base_url: str | None = None,
        key: str | None = None,
        timeout_s: float = 60.0,
        key_secret: str | None = None,
    ) -> None:
        self.base_url = (base_url or OPENAI_URL).rstrip("/")
        root = self.base_url.removesuffix("/v1")
        self.http = JsonEndpoint(root, timeout_s=timeout_s)
        self._key = key
        self.key_secret = key_secret

    @classmethod
    def for_record(cls, record: VersionRecord) -> HostedBackend:
        m = record.manifest
        return cls(m.hosted_base_url, key_secret=m.hosted_api_key_secret)

    @property
    def key(self) -> str | None:
        """The key given, else the named secret's (read through its 5-minute cache, so a
        rotated key is picked up by a long-lived backend)."""
        return self._key or api_key(self.key_secret)

    def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        return self.http.request(method, "/v1" + path, body, timeout_s=timeout_s, headers=headers)

    def fine_tuning_job(self, job_id: str) -> dict[str, Any]:
        """The platform's record of a fine-tuning job (what its webhook announced)."""
        status, data = self._request("GET", f"/fine_tuning/jobs/{job_id}", timeout_s=10)
        if status != 200:
            raise BackendUnavailable(
                f"{self.base_url} answered {status} for job {job_id}: {error_text(data)}"
            )
        return dict(json.loads(data))

    def listed(self) -> set[str]:
        status, data = self._request("GET", "/models", timeout_s=10)
        if status != 200:
            raise BackendUnavailable(
                f"{self.base_url}/models answered {status}: {error_text(data)}"
            )
        return {m["id"] for m in json.loads(data).get("data", [])}

    def register(self, record: VersionRecord) -> None:
        model_id = record.manifest.hosted_model_id or ""
        if self.base_url == OPENAI_URL and not OPENAI_FT_ID.fullmatch(model_id):
            raise LoadFailed(
                f"{model_id!r} is not an OpenAI fine-tune id",
                reason=f"{model_id!r} is not an OpenAI fine-tune id (ft:<base>:<org>:…:<id>)",
            )
        if model_id not in self.listed():
            reason = f"{self.base_url} does not list model {model_id!r}"
            raise LoadFailed(reason, reason=reason)

    def unregister(self, record: VersionRecord) -> None:
        """Nothing to unload: the platform owns the fine-tune (ftserve never deletes it)."""

    def loaded(self) -> set[str]:
        return self.listed()

    def is_loaded(self, record: VersionRecord) -> bool:
        return (record.manifest.hosted_model_id or "") in self.listed()

    def invoke(
        self,
        record: VersionRecord,
        body: dict[str, Any],
        path: str = "/v1/chat/completions",
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        payload = body | {"model": record.manifest.hosted_model_id}
        status, data = self._request("POST", path.removeprefix("/v1"), payload, timeout_s=timeout_s)
        if status == 200:
            result = dict(json.loads(data))
            result["model"] = record.name
            return result
        if status in (400, 404, 422):
            raise BadRequest(error_text(data))
        raise BackendUnavailable(
            f"{self.base_url} failed ({status}): {error_text(data)}", retry_after=5
        )

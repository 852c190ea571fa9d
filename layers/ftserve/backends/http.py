"""The one HTTP client of the backends: pooled JSON requests mapped to backend errors."""

from __future__ import annotations

import json
from typing import Any

from ftserve.errors import BackendTimeout, BackendUnavailable


def _pool() -> Any:
    import urllib3

    return urllib3.PoolManager(maxsize=16, retries=False)


class JsonEndpoint:
    """An HTTP server speaking JSON (a vLLM replica, an OpenAI-compatible platform), pooled."""

    def __init__(self, url: str, pool: Any | None = None, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._pool = pool

    @property
    def pool(self) -> Any:
        if self._pool is None:
            self._pool = _pool()
        return self._pool

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        timeout_s: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        import urllib3

        try:
            response = self.pool.request(
                method,
                self.url + path,
                body=json.dumps(body).encode() if body is not None else None,
                headers={"Content-Type": "application/json", **(headers or {})},
                timeout=urllib3.Timeout(connect=2.0, read=timeout_s or self.timeout_s),
                retries=False,
            )
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
            raise BackendTimeout(
                f"{self.url} did not answer within {timeout_s or self.timeout_s:.0f} s",
                retry_after=1,
            ) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise BackendUnavailable(f"{self.url} is unreachable: {exc}", retry_after=5) from exc
        return int(response.status), bytes(response.data)


def error_text(data: bytes) -> str:
    try:
        body = json.loads(data)
    except ValueError:
        return data.decode(errors="replace")[:500]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", body["error"]))
    return data.decode(errors="replace")[:500]

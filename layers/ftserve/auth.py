"""API keys: stored hashed with the models they may call; compared in constant time.

A key looks like `fts_<id>_<secret>`. The table holds SHA-256(key) under `KEY#<id>`, never the
key. Scopes are model names or families (`acme-*`).
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ftserve.aws import client
from ftserve.errors import FtserveError
from ftserve.registry import now_iso

KEY_PREFIX = "fts_"


class Unauthorized(FtserveError):
    """No key, or a key that is unknown or revoked."""


class Forbidden(FtserveError):
    """A valid key that may not use this model."""


class ApiKey(BaseModel):
    key_id: str
    name: str
    scopes: list[str]
    created_at: str
    revoked: bool = False

    def allows(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, scope) for scope in self.scopes)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _split(key: str) -> str | None:
    if not key.startswith(KEY_PREFIX):
        return None
    key_id, _, secret = key[len(KEY_PREFIX) :].partition("_")
    return key_id if key_id.isalnum() and len(secret) >= 16 else None


@dataclass
class KeyStore:
    table_name: str
    ddb: Any = None
    cache_s: float = 60.0
    _cache: dict[str, tuple[float, dict[str, Any] | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ddb = self.ddb or client("dynamodb")

    def create(self, name: str, scopes: list[str]) -> tuple[str, ApiKey]:
        """A new key; the plain key is returned once and never stored."""
        key_id = secrets.token_hex(6)
        key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(24)}"
        record = ApiKey(key_id=key_id, name=name, scopes=scopes, created_at=now_iso())
        self.ddb.put_item(
            TableName=self.table_name,
            Item={
                "pk": {"S": f"KEY#{key_id}"},
                "sk": {"S": "KEY"},
                "kind": {"S": "key"},
                "key_sha256": {"S": _hash(key)},
                "key_id": {"S": key_id},
                "name": {"S": name},
                "scopes": {"L": [{"S": s} for s in scopes]},
                "created_at": {"S": record.created_at},
                "revoked": {"BOOL": False},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
        return key, record

    def revoke(self, key_id: str) -> None:
        self.ddb.update_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"KEY#{key_id}"}, "sk": {"S": "KEY"}},
            UpdateExpression="SET revoked = :t",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":t": {"BOOL": True}},
        )
        self._cache.pop(key_id, None)

    def list(self) -> list[ApiKey]:
        items = []
        for page in self.ddb.get_paginator("scan").paginate(
            TableName=self.table_name,
            FilterExpression="kind = :k",
            ExpressionAttributeValues={":k": {"S": "key"}},
        ):
            items += [_to_key(i) for i in page["Items"]]
        return sorted(items, key=lambda k: k.created_at)

    def authenticate(self, authorization: str | None) -> ApiKey:
        """`Bearer fts_…` → the key's record; Unauthorized otherwise (one message for all cases)."""
        scheme, _, key = (authorization or "").partition(" ")
        key_id = _split(key.strip()) if scheme.lower() == "bearer" else None
        if key_id is None:
            raise Unauthorized("Missing or malformed API key (send Authorization: Bearer fts_…)")
        item = self._item(key_id)
        expected = item["key_sha256"]["S"] if item else _hash("no such key")
        valid = hmac.compare_digest(expected, _hash(key.strip()))
        if not item or not valid or item.get("revoked", {}).get("BOOL"):
            raise Unauthorized("Incorrect API key provided")
        return _to_key(item)

    def _item(self, key_id: str) -> dict[str, Any] | None:
        hit = self._cache.get(key_id)
        now = time.monotonic()
        if hit and now - hit[0] < self.cache_s:
            return hit[1]
        item = self.ddb.get_item(
            TableName=self.table_name, Key={"pk": {"S": f"KEY#{key_id}"}, "sk": {"S": "KEY"}}
        ).get("Item")
        self._cache[key_id] = (now, item)
        return item


def _to_key(item: dict[str, Any]) -> ApiKey:
    return ApiKey(
        key_id=item["key_id"]["S"],
        name=item["name"]["S"],
        scopes=[s["S"] for s in item["scopes"]["L"]],
        created_at=item["created_at"]["S"],
        revoked=item.get("revoked", {}).get("BOOL", False),
    )

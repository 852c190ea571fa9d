"""The registry: immutable version records and per-model history in one DynamoDB table.

Layout (one table, `pk`/`sk`):
  MODEL#<model> / V#<000000003>          the version record (never overwritten)
  MODEL#<model> / H#<iso time>#<id>      one history entry per change, listed in order
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ftserve.aws import client, error_code
from ftserve.errors import TransientError, VersionExists, VersionNotFound
from ftserve.manifest import Manifest, version_number

Status = Literal["registered", "serving", "load_failed", "retired"]
THROTTLING = {
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class FileRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    sha256: str
    size: int
    s3_version_id: str | None = None


class MergedArtifact(BaseModel):
    """A standalone model: the adapter merged into its pinned base (for one tune at high volume)."""

    uri: str
    files: dict[str, str]  # name → SHA-256
    created_at: str


class VersionRecord(BaseModel):
    """The lineage of one version: the manifest plus where its files are and what they hash to."""

    model_config = ConfigDict(extra="ignore")

    manifest: Manifest
    adapter_uri: str
    files: dict[str, FileRecord]
    content_sha256: str
    registered_at: str
    status: Status = "registered"
    status_reason: str = ""
    promoted_at: str | None = None
    changed_by: str = ""
    announced: bool = False
    merged: MergedArtifact | None = None

    @property
    def model(self) -> str:
        return self.manifest.model

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def name(self) -> str:
        return f"{self.manifest.model}@{self.manifest.version}"


class HistoryEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    at: str
    model: str
    action: str
    version: str | None = None
    actor: str
    reason: str = ""
    details: dict[str, Any] = {}


def _pk(model: str) -> str:
    return f"MODEL#{model}"


def _version_sk(version: str) -> str:
    return f"V#{version_number(version):09d}"


def _raise_transient(exc: Exception) -> None:
    if error_code(exc) in THROTTLING:
        raise TransientError(f"DynamoDB throttled: {exc}") from exc


class Registry:
    """Reads and writes the registry table; every write that must not clobber is conditional."""

    def __init__(self, table_name: str, dynamodb: Any | None = None) -> None:
        self.table_name = table_name
        self._ddb = dynamodb

    @property
    def ddb(self) -> Any:
        if self._ddb is None:
            self._ddb = client("dynamodb")
        return self._ddb

    # --- versions -------------------------------------------------------------------------
    def create_version(self, record: VersionRecord, actor: str) -> bool:
        """Write a new version and its history entry atomically.

        Returns True when this call created it, False when the same content was already there;
        raises VersionExists when a different upload holds the name.
        """
        from boto3.dynamodb.types import TypeSerializer

        ser = TypeSerializer()
        item = {"pk": _pk(record.model), "sk": _version_sk(record.version), "kind": "version"}
        item |= _decimals(record.model_dump(mode="json", exclude_none=True))
        entry = self._history_item(
            record.model,
            "registered",
            record.version,
            actor,
            "",
            {
                "content_sha256": record.content_sha256,
                "base_model": record.manifest.base_model,
            },
        )
        try:
            self.ddb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": {k: ser.serialize(v) for k, v in item.items()},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {"Put": {"TableName": self.table_name, "Item": entry}},
                ]
            )
            return True
        except Exception as exc:
            _raise_transient(exc)
            if error_code(exc) != "TransactionCanceledException":
                raise
        existing = self.get_version(record.model, record.version)
        if existing.content_sha256 != record.content_sha256:
            raise VersionExists(
                f"version exists: {record.name} is already registered with different content "
                f"(sha256 {existing.content_sha256[:12]}…, this upload {record.content_sha256[:12]}…)"
            )
        return False

    def get_version(self, model: str, version: str) -> VersionRecord:
        from boto3.dynamodb.types import TypeDeserializer

        try:
            resp = self.ddb.get_item(
                TableName=self.table_name,
                Key={"pk": {"S": _pk(model)}, "sk": {"S": _version_sk(version)}},
                ConsistentRead=True,
            )
        except Exception as exc:
            _raise_transient(exc)
            raise
        if "Item" not in resp:
            raise VersionNotFound(f"{model}@{version} is not registered")
        de = TypeDeserializer()
        return VersionRecord.model_validate(
            _plain({k: de.deserialize(v) for k, v in resp["Item"].items()})
        )

    def list_versions(self, model: str) -> list[VersionRecord]:
        return [VersionRecord.model_validate(i) for i in self._query(model, "V#")]

    def mark_announced(self, model: str, version: str) -> None:
        self.ddb.update_item(
            TableName=self.table_name,
            Key={"pk": {"S": _pk(model)}, "sk": {"S": _version_sk(version)}},
            UpdateExpression="SET announced = :t",
            ExpressionAttributeValues={":t": {"BOOL": True}},
        )

    def set_status(
        self,
        model: str,
        version: str,
        status: Status,
        reason: str,
        actor: str,
        history: bool = True,
    ) -> None:
        """Change a version's status (the only mutable part of a record) and record why."""
        entry = {
            "Put": {
                "TableName": self.table_name,
                "Item": self._history_item(model, f"status:{status}", version, actor, reason, {}),
            }
        }
        self.ddb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": {"pk": {"S": _pk(model)}, "sk": {"S": _version_sk(version)}},
                        "UpdateExpression": "SET #s = :s, status_reason = :r, changed_by = :a",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": {
                            ":s": {"S": status},
                            ":r": {"S": reason},
                            ":a": {"S": actor},
                        },
                    }
                },
                *([entry] if history else []),
            ]
        )

    def record_merged(self, model: str, version: str, merged: MergedArtifact, actor: str) -> None:
        from boto3.dynamodb.types import TypeSerializer

        value = TypeSerializer().serialize(merged.model_dump(mode="json"))
        entry = self._history_item(model, "merged", version, actor, "", {"uri": merged.uri})
        self.ddb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": {"pk": {"S": _pk(model)}, "sk": {"S": _version_sk(version)}},
                        "UpdateExpression": "SET merged = :m",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeValues": {":m": value},
                    }
                },
                {"Put": {"TableName": self.table_name, "Item": entry}},
            ]
        )

    # --- history --------------------------------------------------------------------------
    def record_history(
        self,
        model: str,
        action: str,
        version: str | None,
        actor: str,
        reason: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        self.ddb.put_item(
            TableName=self.table_name,
            Item=self._history_item(model, action, version, actor, reason, details or {}),
        )

    def history(self, model: str) -> list[HistoryEntry]:
        return [HistoryEntry.model_validate(i) for i in self._query(model, "H#")]

    # --- per-model settings (gate, canary) ------------------------------------------------------
    def put_model_setting(self, model: str, name: str, value: Any) -> None:
        key = {"pk": {"S": _pk(model)}, "sk": {"S": f"SETTING#{name}"}}
        if value is None:
            self.ddb.delete_item(TableName=self.table_name, Key=key)
            return
        self.ddb.put_item(
            TableName=self.table_name,
            Item=key
            | {"kind": {"S": "setting"}, "value": {"S": json.dumps(value)}, "at": {"S": now_iso()}},
        )

    def get_model_setting(self, model: str, name: str) -> Any:
        item = self.ddb.get_item(
            TableName=self.table_name,
            ConsistentRead=True,
            Key={"pk": {"S": _pk(model)}, "sk": {"S": f"SETTING#{name}"}},
        ).get("Item")
        return json.loads(item["value"]["S"]) if item else None

    def models(self) -> list[str]:
        names: set[str] = set()
        paginator = self.ddb.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self.table_name,
            ProjectionExpression="pk",
            FilterExpression="kind = :v",
            ExpressionAttributeValues={":v": {"S": "version"}},
        ):
            names.update(i["pk"]["S"].removeprefix("MODEL#") for i in page["Items"])
        return sorted(names)

    def _history_item(
        self,
        model: str,
        action: str,
        version: str | None,
        actor: str,
        reason: str,
        details: dict[str, Any],
    ) -> dict[str, Any]:
        from boto3.dynamodb.types import TypeSerializer

        at = now_iso()
        body = HistoryEntry(
            at=at,
            model=model,
            action=action,
            version=version,
            actor=actor,
            reason=reason,
            details=details,
        ).model_dump(mode="json", exclude_none=True)
        body = _decimals(body) | {
            "pk": _pk(model),
            "sk": f"H#{at}#{secrets.token_hex(4)}",
            "kind": "history",
        }
        ser = TypeSerializer()
        return {k: ser.serialize(v) for k, v in body.items()}

    def _query(self, model: str, prefix: str) -> list[dict[str, Any]]:
        from boto3.dynamodb.types import TypeDeserializer

        de = TypeDeserializer()
        items: list[dict[str, Any]] = []
        paginator = self.ddb.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
            ExpressionAttributeValues={":pk": {"S": _pk(model)}, ":p": {"S": prefix}},
            ConsistentRead=True,
        ):
            items += [_plain({k: de.deserialize(v) for k, v in i.items()}) for i in page["Items"]]
        return items


def _decimals(value: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB takes no floats: carry them as Decimal (exact for what JSON held)."""
    from decimal import Decimal

    return dict(json.loads(json.dumps(value), parse_float=Decimal))


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; the models want int/float."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_plain(v) for v in value]
    return value

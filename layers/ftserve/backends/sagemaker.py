"""SageMaker multi-adapter inference components: each version is an adapter component on the
base model's component (`Specification.BaseInferenceComponentName`), invoked with
`invoke_endpoint(..., InferenceComponentName=...)` in the OpenAI chat schema (LMI containers
accept it)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from typing import Any

from ftserve.aws import client, error_code
from ftserve.config import SageMakerTarget
from ftserve.errors import BackendError, BackendTimeout, BackendUnavailable, BadRequest, LoadFailed
from ftserve.manifest import MANIFEST_FILE
from ftserve.registry import VersionRecord

_UNAVAILABLE = {
    "ServiceUnavailable",
    "InternalFailure",
    "ThrottlingException",
    "InternalDependencyException",
    "ModelNotReadyException",
}


def component_name(record: VersionRecord) -> str:
    """A valid, stable component name (≤ 63 chars of [a-zA-Z0-9-]) for `<model>@<version>`."""
    name = f"ftserve-{record.model}-{record.version}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(record.name.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-')}-{digest}"


def artifact_key(record: VersionRecord) -> str:
    # Outside adapters/<model>/<version>/, so a re-delivered upload never sees it as a stray file.
    return f"artifacts/{record.model}/{record.version}/adapter.tar.gz"


class SageMakerBackend:
    def __init__(
        self,
        target: SageMakerTarget,
        s3: Any = None,
        sagemaker: Any = None,
        runtime: Any = None,
        poll_s: float = 10.0,
        timeout_s: float = 900.0,
    ) -> None:
        self.target = target
        self.s3 = s3 or client("s3")
        self.sagemaker = sagemaker or client("sagemaker")
        self.runtime = runtime or client("sagemaker-runtime")
        self.poll_s = poll_s
        self.timeout_s = timeout_s

    def package(self, record: VersionRecord) -> str:
        """Pack the adapter's files (pinned object versions) as the `.tar.gz` SageMaker loads."""
        bucket, prefix = record.adapter_uri.removeprefix("s3://").split("/", 1)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name, info in sorted(record.files.items()):
                if name == MANIFEST_FILE:
                    continue
                extra = {"VersionId": info.s3_version_id} if info.s3_version_id else {}
                data = self.s3.get_object(Bucket=bucket, Key=prefix + name, **extra)["Body"].read()
                member = tarfile.TarInfo(name)
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
        key = artifact_key(record)
        self.s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
        return f"s3://{bucket}/{key}"

    def register(self, record: VersionRecord) -> None:
        name = component_name(record)
        artifact = self.package(record)
        try:
            self.sagemaker.create_inference_component(
                InferenceComponentName=name,
                EndpointName=self.target.endpoint_name,
                Specification={
                    "BaseInferenceComponentName": self.target.base_component_name,
                    "Container": {"ArtifactUrl": artifact},
                },
                Tags=[
                    {"Key": "ftserve:model", "Value": record.model},
                    {"Key": "ftserve:version", "Value": record.version},
                ],
            )
        except Exception as exc:
            code, text = error_code(exc), str(exc)
            if code in _UNAVAILABLE:
                raise BackendUnavailable(f"SageMaker: {text}", retry_after=10) from exc
            if "already exist" not in text:
                raise LoadFailed(f"SageMaker refused {name}: {text}", reason=text) from exc
        self._wait_in_service(name)

    def _wait_in_service(self, name: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while True:
            desc = self.sagemaker.describe_inference_component(InferenceComponentName=name)
            status = desc["InferenceComponentStatus"]
            if status == "InService":
                return
            if status == "Failed":
                reason = desc.get("FailureReason", "unknown failure")
                raise LoadFailed(f"SageMaker component {name} failed: {reason}", reason=reason)
            if time.monotonic() >= deadline:
                raise BackendUnavailable(
                    f"SageMaker component {name} still {status} after {self.timeout_s:.0f} s",
                    retry_after=60,
                )
            time.sleep(self.poll_s)

    def unregister(self, record: VersionRecord) -> None:
        try:
            self.sagemaker.delete_inference_component(InferenceComponentName=component_name(record))
        except Exception as exc:
            if "Could not find" not in str(exc):
                raise BackendError(
                    f"SageMaker could not delete {component_name(record)}: {exc}"
                ) from exc

    def loaded(self) -> set[str]:
        names: set[str] = set()
        kwargs: dict[str, Any] = {
            "EndpointNameEquals": self.target.endpoint_name,
            "StatusEquals": "InService",
        }
        while True:
            page = self.sagemaker.list_inference_components(**kwargs)
            names |= {c["InferenceComponentName"] for c in page["InferenceComponents"]}
            if not page.get("NextToken"):
                return names - {self.target.base_component_name}
            kwargs["NextToken"] = page["NextToken"]

    def is_loaded(self, record: VersionRecord) -> bool:
        return component_name(record) in self.loaded()

    def invoke(
        self,
        record: VersionRecord,
        body: dict[str, Any],
        path: str = "/v1/chat/completions",
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        try:
            response = self.runtime.invoke_endpoint(
                EndpointName=self.target.endpoint_name,
                InferenceComponentName=component_name(record),
                ContentType="application/json",
                Accept="application/json",
                Body=json.dumps(body | {"model": record.name}).encode(),
            )
        except Exception as exc:
            code = error_code(exc)
            if code in _UNAVAILABLE:
                raise BackendUnavailable(f"SageMaker: {exc}", retry_after=5) from exc
            if code in {"ValidationError", "ModelError"}:
                raise BadRequest(f"SageMaker: {exc}") from exc
            if "timed out" in str(exc).lower():
                raise BackendTimeout(f"SageMaker: {exc}") from exc
            raise BackendError(f"SageMaker: {exc}") from exc
        result = json.loads(response["Body"].read())
        result["model"] = record.name
        return dict(result)

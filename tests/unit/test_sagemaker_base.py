"""The SageMaker base-endpoint helper makes requests the real service model accepts."""

from __future__ import annotations

import sys

import boto3
from botocore.stub import Stubber

from tests.support import ROOT

sys.path.insert(0, str(ROOT / "infra"))
from sagemaker_base import BaseDeployment  # noqa: E402


def test_deploy_requests_validate_against_the_sagemaker_service_model() -> None:
    deployment = BaseDeployment(
        "llama31-8b",
        "s3://models/llama-3.1-8b/",
        "arn:aws:iam::123456789012:role/SageMakerExecution",
    )
    client = boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stub = Stubber(client)
    arn = "arn:aws:sagemaker:us-east-1:123456789012"
    responses = {
        "create_endpoint_config": {"EndpointConfigArn": f"{arn}:endpoint-config/llama31-8b-config"},
        "create_endpoint": {"EndpointArn": f"{arn}:endpoint/llama31-8b-endpoint"},
        "create_inference_component": {
            "InferenceComponentArn": f"{arn}:inference-component/llama31-8b-base"
        },
    }
    for operation, params in deployment.requests():
        stub.add_response(operation, responses[operation], params)  # Stubber validates params
    with stub:
        for operation, params in deployment.requests():
            getattr(client, operation)(**params)
    stub.assert_no_pending_responses()
    component = deployment.requests()[-1][1]
    env = component["Specification"]["Container"]["Environment"]
    assert env["OPTION_ENABLE_LORA"] == "true"
    assert component["Specification"]["Container"]["ArtifactUrl"] == "s3://models/llama-3.1-8b/"

"""Deploys a base model on a SageMaker endpoint as an inference component with LoRA enabled
(LMI / DJL container), ready for ftserve's adapter components.

    python infra/sagemaker_base.py --name llama31-8b --model-s3 s3://bucket/llama-3.1-8b/ \
        --role arn:aws:iam::123456789012:role/SageMakerExecution --instance-type ml.g6.12xlarge

It makes four requests (model, endpoint config, endpoint, base component) with boto3, validated in
the tests against botocore's SageMaker service model. Then set the deployment's
`FTSERVE_SAGEMAKER_TARGETS` to {"<base id>@<revision>": {"endpoint_name": …, "base_component_name": …}}.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

# An LMI image; pick the current one for your region from AWS's "Available DLC images" list.
DEFAULT_IMAGE = "763104351884.dkr.ecr.{region}.amazonaws.com/djl-inference:0.33.0-lmi15.0.0-cu128"


@dataclass
class BaseDeployment:
    name: str
    model_s3_uri: str
    role_arn: str
    instance_type: str = "ml.g6.12xlarge"
    region: str = "us-east-1"
    image: str | None = None
    gpus: int = 1
    memory_mb: int = 32_768
    max_loras: int = 8
    max_cpu_loras: int = 64
    max_lora_rank: int = 64

    @property
    def endpoint_name(self) -> str:
        return f"{self.name}-endpoint"

    @property
    def base_component_name(self) -> str:
        return f"{self.name}-base"

    def requests(self) -> list[tuple[str, dict[str, Any]]]:
        """(operation, parameters) in order: what `deploy` sends."""
        return [
            (
                "create_endpoint_config",
                {
                    "EndpointConfigName": f"{self.name}-config",
                    "ExecutionRoleArn": self.role_arn,
                    "ProductionVariants": [
                        {
                            "VariantName": "AllTraffic",
                            "InstanceType": self.instance_type,
                            "InitialInstanceCount": 1,
                            "ManagedInstanceScaling": {
                                "Status": "ENABLED",
                                "MinInstanceCount": 1,
                                "MaxInstanceCount": 2,
                            },
                            # Route by the least outstanding requests: adapters share the base's GPUs.
                            "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"},
                        }
                    ],
                },
            ),
            (
                "create_endpoint",
                {"EndpointName": self.endpoint_name, "EndpointConfigName": f"{self.name}-config"},
            ),
            (
                "create_inference_component",
                {
                    "InferenceComponentName": self.base_component_name,
                    "EndpointName": self.endpoint_name,
                    "VariantName": "AllTraffic",
                    "Specification": {
                        "Container": {
                            "Image": (self.image or DEFAULT_IMAGE).format(region=self.region),
                            "ArtifactUrl": self.model_s3_uri,
                            "Environment": {
                                "OPTION_ROLLING_BATCH": "vllm",
                                "OPTION_ENABLE_LORA": "true",
                                "OPTION_MAX_LORAS": str(self.max_loras),
                                "OPTION_MAX_CPU_LORAS": str(self.max_cpu_loras),
                                "OPTION_MAX_LORA_RANK": str(self.max_lora_rank),
                                "OPTION_TENSOR_PARALLEL_DEGREE": str(self.gpus),
                            },
                        },
                        "ComputeResourceRequirements": {
                            "NumberOfAcceleratorDevicesRequired": self.gpus,
                            "MinMemoryRequiredInMb": self.memory_mb,
                        },
                    },
                    "RuntimeConfig": {"CopyCount": 1},
                },
            ),
        ]

    def deploy(self, sagemaker: Any) -> dict[str, str]:
        for operation, params in self.requests():
            getattr(sagemaker, operation)(**params)
            if operation == "create_endpoint":
                sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=self.endpoint_name)
        return {
            "endpoint_name": self.endpoint_name,
            "base_component_name": self.base_component_name,
        }


def main() -> None:
    import boto3

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--name", required=True)
    parser.add_argument("--model-s3", required=True, help="s3:// folder of the base model's files")
    parser.add_argument("--role", required=True, help="SageMaker execution role ARN")
    parser.add_argument("--instance-type", default="ml.g6.12xlarge")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--gpus", type=int, default=1)
    args = parser.parse_args()
    deployment = BaseDeployment(
        args.name, args.model_s3, args.role, args.instance_type, args.region, gpus=args.gpus
    )
    target = deployment.deploy(boto3.client("sagemaker", region_name=args.region))
    print(json.dumps(target))


if __name__ == "__main__":
    main()

"""The naive first attempt at the invoke function, for the cold-start and SSM-call baselines:
everything imported eagerly at module load (boto3, openai, powertools with its Tracer), an SSM
read on every request (no cache), and the heavy openai SDK to call the backend."""

import json
import os

import boto3
import openai
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

logger = Logger(service="naive")
tracer = Tracer(service="naive")
metrics = Metrics(namespace="naive", service="naive")
ssm = boto3.client("ssm")
ddb = boto3.client("dynamodb")
app = APIGatewayHttpResolver()


@app.post("/v1/chat/completions")
def chat() -> dict:
    body = app.current_event.json_body
    model = body["model"]
    version = ssm.get_parameter(Name=f"/ftserve/models/{model}/active")["Parameter"]["Value"]
    record = ddb.get_item(
        TableName=os.environ["FTSERVE_TABLE_NAME"],
        Key={"pk": {"S": f"MODEL#{model}"}, "sk": {"S": f"V#{int(version[1:]):09d}"}},
    )["Item"]
    base = json.loads(os.environ["FTSERVE_VLLM_ENDPOINTS"])
    url = next(iter(base.values()))[0]
    client = openai.OpenAI(base_url=url + "/v1", api_key="none")
    answer = client.chat.completions.create(**{**body, "model": f"{model}@{version}"})
    result = answer.model_dump()
    result["model"] = f"{model}@{version}"
    assert record
    return result


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    return app.resolve(event, context)

"""Creates the resources of `template.yaml` in an AWS-compatible endpoint (moto) from the template.

The SAM template is translated offline (aws-sam-translator), intrinsic functions are resolved
to local names, and each resource moto supports is created through its API. Rules whose target
is a Lambda function get an SQS queue as their target instead (moto cannot invoke Lambda): the
dispatcher reads those queues and calls the function's handler with the real event.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
EVENT_LOG_RULE = "ftserve-local-event-log"


@dataclass
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    max_retries: int = 2
    on_failure_queue_url: str | None = None


@dataclass
class RuleSpec:
    logical_id: str
    pattern: dict[str, Any] | None
    schedule: str | None
    function: str
    queue_url: str | None = None


@dataclass
class LocalCloud:
    """What was created, by logical id: names, ARNs, functions and the rules that feed them."""

    names: dict[str, str] = field(default_factory=dict)
    arns: dict[str, str] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    rules: dict[str, RuleSpec] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    event_log_queue_url: str = ""
    routes: dict[tuple[str, str], str] = field(default_factory=dict)  # (METHOD, path) → function

    def name(self, logical_id: str) -> str:
        return self.names[logical_id]


def translate(template_path: Path) -> dict[str, Any]:
    """SAM → CloudFormation, offline. Local code folders stand in for the S3 URIs `sam package` writes."""
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    class _NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    template = yaml_parse(template_path.read_text())
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str):
                props[key] = f"s3://ftserve-local-code/{props[key]}"
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    return dict(transform(template, {}, _NoManagedPolicies()))


class _Resolver:
    """Resolves Ref / Fn::GetAtt / Fn::Sub / Fn::Join against local names."""

    def __init__(
        self,
        cfn: dict[str, Any],
        names: dict[str, str],
        arns: dict[str, str],
        overrides: dict[str, str],
    ) -> None:
        self.params = {k: str(v.get("Default", "")) for k, v in cfn.get("Parameters", {}).items()}
        self.params |= overrides
        self.pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::StackName": "ftserve-local",
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.names, self.arns = names, arns

    def ref(self, name: str) -> str:
        for table in (self.pseudo, self.params, self.names):
            if name in table:
                return table[name]
        raise KeyError(f"cannot resolve Ref {name}")

    def __call__(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self(n) for n in node]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Ref"}:
            return self.ref(node["Ref"])
        if set(node) == {"Fn::GetAtt"}:
            target, attr = (
                node["Fn::GetAtt"]
                if isinstance(node["Fn::GetAtt"], list)
                else node["Fn::GetAtt"].split(".", 1)
            )
            return self.arns[target] if attr == "Arn" else self.names[target]
        if set(node) == {"Fn::Sub"}:
            text = node["Fn::Sub"] if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"][0]
            import re

            def sub(match: re.Match[str]) -> str:
                token = match.group(1)
                if token.endswith(".Arn"):
                    return self.arns[token[:-4]]
                return self.ref(token)

            return re.sub(r"\$\{([^}]+)\}", sub, text)
        if set(node) == {"Fn::Join"}:
            sep, parts = node["Fn::Join"]
            return sep.join(str(self(p)) for p in parts)
        return {k: self(v) for k, v in node.items()}


def _local_name(logical_id: str, kind: str) -> str:
    base = f"ftserve-{logical_id}"
    return base.lower() if kind == "AWS::S3::Bucket" else base


def _arn(kind: str, name: str) -> str:
    service = {
        "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
        "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
        "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
        "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        "AWS::Events::Rule": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}",
    }
    return service.get(kind, f"arn:aws:local:{REGION}:{ACCOUNT}:{name}")


def provision(
    template_path: Path, clients: Any, root: Path, parameter_overrides: dict[str, str] | None = None
) -> LocalCloud:
    """Create the template's resources through `clients(service)`; return what was made."""
    cfn = translate(template_path)
    resources: dict[str, Any] = cfn["Resources"]
    cloud = LocalCloud()
    for logical_id, res in resources.items():
        name = _local_name(logical_id, res["Type"])
        cloud.names[logical_id] = name
        cloud.arns[logical_id] = _arn(res["Type"], name)
    resolve = _Resolver(cfn, cloud.names, cloud.arns, parameter_overrides or {})
    cloud.parameters = dict(resolve.params)

    creators = {
        "AWS::S3::Bucket": _create_bucket,
        "AWS::DynamoDB::Table": _create_table,
        "AWS::SQS::Queue": _create_queue,
    }
    for logical_id, res in resources.items():
        create = creators.get(res["Type"])
        if create:
            create(clients, cloud.name(logical_id), resolve(res.get("Properties", {})))

    for logical_id, res in resources.items():
        if res["Type"] == "AWS::Lambda::Function":
            cloud.functions[logical_id] = _function(logical_id, res, resolve, root)
    for res in resources.values():
        if res["Type"] == "AWS::Lambda::EventInvokeConfig":
            _apply_invoke_config(cloud, clients, res["Properties"], resolve)
    for logical_id, res in resources.items():
        if res["Type"] == "AWS::Events::Rule":
            _create_rule(clients, cloud, logical_id, resolve(res["Properties"]))
    _create_event_log(clients, cloud)
    for res in resources.values():
        if res["Type"] == "AWS::ApiGatewayV2::Api":
            cloud.routes |= _routes(res["Properties"].get("Body", {}), cloud)
    return cloud


def _routes(body: dict[str, Any], cloud: LocalCloud) -> dict[tuple[str, str], str]:
    """The HTTP API's routes from its OpenAPI body: (METHOD, path) → the function it proxies to."""
    import re

    routes = {}
    for path, methods in body.get("paths", {}).items():
        for method, spec in methods.items():
            uri = spec.get("x-amazon-apigateway-integration", {}).get("uri", {})
            text = uri.get("Fn::Sub", "") if isinstance(uri, dict) else str(uri)
            match = re.search(r"\$\{(\w+)\.Arn\}", text)
            if match and match[1] in cloud.functions:
                routes[(method.upper(), path)] = match[1]
    return routes


def _create_bucket(clients: Any, name: str, props: dict[str, Any]) -> None:
    s3 = clients("s3")
    s3.create_bucket(Bucket=name)
    if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    notification = props.get("NotificationConfiguration", {})
    if notification.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        # moto's CloudFormation ignores this property; the API call is what turns it on.
        s3.put_bucket_notification_configuration(
            Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )


def _create_table(clients: Any, name: str, props: dict[str, Any]) -> None:
    ddb = clients("dynamodb")
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
    )
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)


def _create_queue(clients: Any, name: str, props: dict[str, Any]) -> None:
    clients("sqs").create_queue(QueueName=name)


def _function(logical_id: str, res: dict[str, Any], resolve: _Resolver, root: Path) -> FunctionSpec:
    props = res["Properties"]
    env = resolve(props.get("Environment", {}).get("Variables", {}))
    return FunctionSpec(
        logical_id=logical_id,
        code_dir=root / props["Code"]["S3Key"],
        handler=props["Handler"],
        environment={k: str(v) for k, v in env.items()},
    )


def _apply_invoke_config(
    cloud: LocalCloud, clients: Any, props: dict[str, Any], resolve: _Resolver
) -> None:
    function = props["FunctionName"]["Ref"]
    spec = cloud.functions[function]
    spec.max_retries = int(props.get("MaximumRetryAttempts", 2))
    destination = resolve(
        props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    )
    if destination:
        queue_name = destination.rsplit(":", 1)[-1]
        spec.on_failure_queue_url = clients("sqs").get_queue_url(QueueName=queue_name)["QueueUrl"]


def _create_rule(clients: Any, cloud: LocalCloud, logical_id: str, props: dict[str, Any]) -> None:
    for target in props.get("Targets", []):
        function = next(
            (f for f, arn in cloud.arns.items() if arn == target["Arn"] and f in cloud.functions),
            None,
        )
        if function is None:
            continue
        rule = RuleSpec(
            logical_id, props.get("EventPattern"), props.get("ScheduleExpression"), function
        )
        cloud.rules[logical_id] = rule
        if rule.pattern is None:
            continue  # schedules are run by the dispatcher's clock
        sqs, events = clients("sqs"), clients("events")
        queue_name = f"ftserve-rule-{logical_id}"
        rule.queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        events.put_rule(Name=cloud.name(logical_id), EventPattern=json.dumps(rule.pattern))
        events.put_targets(
            Rule=cloud.name(logical_id),
            Targets=[{"Id": "local-queue", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_name}"}],
        )


def _create_event_log(clients: Any, cloud: LocalCloud) -> None:
    """Every ftserve event also lands in one queue, so tools and tests can read what happened."""
    sqs, events = clients("sqs"), clients("events")
    cloud.event_log_queue_url = sqs.create_queue(QueueName=EVENT_LOG_RULE)["QueueUrl"]
    events.put_rule(Name=EVENT_LOG_RULE, EventPattern=json.dumps({"source": ["ftserve"]}))
    events.put_targets(
        Rule=EVENT_LOG_RULE,
        Targets=[{"Id": "event-log", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{EVENT_LOG_RULE}"}],
    )

"""Least privilege in template.yaml: no wildcard on data resources, and only the operator role and
the release functions (guard, auto-revert, canary) may write a pointer."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import ROOT

# Actions that have no resource-level permissions in IAM: "*" is the only valid resource.
RESOURCELESS = {
    "cloudwatch:DescribeAlarms",
    "cloudwatch:PutMetricData",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}
POINTER_WRITERS = {"PointerGuardFunction", "AutoRevertFunction", "CanaryFunction", "OperatorRole"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    return dict(yaml_parse((ROOT / "template.yaml").read_text()))


def _statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []

    def walk(owner: str, node: Any) -> None:
        if isinstance(node, dict):
            if "Effect" in node and "Action" in node:
                found.append((owner, node))
            for value in node.values():
                walk(owner, value)
        elif isinstance(node, list):
            for value in node:
                walk(owner, value)

    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        walk(name, props.get("Policies", []))
        walk(
            name,
            props.get("PolicyDocument", {}) if resource["Type"] != "AWS::S3::BucketPolicy" else {},
        )
        walk(name, props.get("Policies", []))
    return found


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def test_no_allow_statement_uses_a_wildcard_action_or_a_wildcard_resource_on_data(
    template: dict[str, Any],
) -> None:
    statements = [(o, s) for o, s in _statements(template) if s["Effect"] == "Allow"]
    assert statements
    for owner, statement in statements:
        for action in _actions(statement):
            assert action != "*" and not action.endswith(":*"), (owner, action)
        if statement.get("Resource") == "*":
            assert set(_actions(statement)) <= RESOURCELESS, (owner, statement)


def test_only_the_operator_role_and_the_release_functions_may_write_pointers(
    template: dict[str, Any],
) -> None:
    writers = {
        owner
        for owner, s in _statements(template)
        if s["Effect"] == "Allow" and "ssm:PutParameter" in _actions(s)
    }
    assert writers == POINTER_WRITERS


def test_the_invoke_path_can_only_read(template: dict[str, Any]) -> None:
    invoke = [s for owner, s in _statements(template) if owner == "InvokeFunction"]
    actions = {a for s in invoke for a in _actions(s)}
    assert actions <= {
        "ssm:GetParametersByPath",
        "ssm:GetParameters",
        "dynamodb:GetItem",
        "events:PutEvents",
        "secretsmanager:GetSecretValue",
    }


def test_the_bucket_refuses_plain_http_and_public_access(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["AdapterBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    policy = template["Resources"]["AdapterBucketPolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    assert any(
        s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
        for s in policy
    )

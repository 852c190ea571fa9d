"""Per-version CloudWatch alarms on the invoke function's metrics (namespace `ftserve`).

Versions are runtime data, so the alarms are made when a version becomes servable, from the
thresholds the template's parameters set: error rate, p99 latency and a quality signal
(average feedback score). Their names say what they watch: `ftserve-<model>-<version>-<kind>`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

NAMESPACE = "ftserve"
SERVICE = "ftserve"


class AlarmThresholds(BaseModel):
    error_rate_percent: float = 5.0
    latency_p99_ms: float = 5000.0
    min_feedback_score: float = 0.0
    period_s: int = 60
    evaluation_periods: int = 1


def alarm_prefix(model: str, version: str) -> str:
    return f"ftserve-{model}-{version}-"


def _dims(model: str, version: str) -> list[dict[str, str]]:
    return [
        {"Name": "service", "Value": SERVICE},
        {"Name": "model", "Value": model},
        {"Name": "version", "Value": version},
    ]


def _stat(
    metric_id: str, name: str, stat: str, model: str, version: str, period: int
) -> dict[str, Any]:
    return {
        "Id": metric_id,
        "ReturnData": False,
        "MetricStat": {
            "Metric": {
                "Namespace": NAMESPACE,
                "MetricName": name,
                "Dimensions": _dims(model, version),
            },
            "Period": period,
            "Stat": stat,
        },
    }


def ensure_version_alarms(
    cloudwatch: Any, model: str, version: str, t: AlarmThresholds, actions: list[str] | None = None
) -> list[str]:
    """Create (or update) the three alarms of one version; returns their names."""
    prefix = alarm_prefix(model, version)
    common = {
        "EvaluationPeriods": t.evaluation_periods,
        "DatapointsToAlarm": t.evaluation_periods,
        "TreatMissingData": "notBreaching",
        "AlarmActions": actions or [],
        "Tags": [
            {"Key": "ftserve:model", "Value": model},
            {"Key": "ftserve:version", "Value": version},
        ],
    }
    cloudwatch.put_metric_alarm(
        AlarmName=prefix + "errors",
        AlarmDescription=f"{model}@{version}: more than {t.error_rate_percent:g}% of requests fail",
        Metrics=[
            _stat("errors", "Errors", "Sum", model, version, t.period_s),
            _stat("requests", "Requests", "Sum", model, version, t.period_s),
            {
                "Id": "rate",
                "Expression": "100 * errors / MAX([requests, 1])",
                "Label": "error rate %",
                "ReturnData": True,
            },
        ],
        ComparisonOperator="GreaterThanThreshold",
        Threshold=t.error_rate_percent,
        **common,
    )
    cloudwatch.put_metric_alarm(
        AlarmName=prefix + "latency-p99",
        AlarmDescription=f"{model}@{version}: p99 latency above {t.latency_p99_ms:g} ms",
        Namespace=NAMESPACE,
        MetricName="Latency",
        Dimensions=_dims(model, version),
        ExtendedStatistic="p99",
        Period=t.period_s,
        Unit="Milliseconds",
        ComparisonOperator="GreaterThanThreshold",
        Threshold=t.latency_p99_ms,
        **common,
    )
    cloudwatch.put_metric_alarm(
        AlarmName=prefix + "feedback",
        AlarmDescription=f"{model}@{version}: average feedback score below {t.min_feedback_score:g}",
        Namespace=NAMESPACE,
        MetricName="FeedbackScore",
        Dimensions=_dims(model, version),
        Statistic="Average",
        Period=t.period_s,
        ComparisonOperator="LessThanThreshold",
        Threshold=t.min_feedback_score,
        **common,
    )
    return [prefix + kind for kind in ("errors", "latency-p99", "feedback")]


def alarm_states(cloudwatch: Any, model: str, version: str) -> dict[str, str]:
    states: dict[str, str] = {}
    for page in cloudwatch.get_paginator("describe_alarms").paginate(
        AlarmNamePrefix=alarm_prefix(model, version)
    ):
        states |= {a["AlarmName"]: a["StateValue"] for a in page["MetricAlarms"]}
    return states

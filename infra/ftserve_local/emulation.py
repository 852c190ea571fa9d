"""What AWS does around the functions that moto does not: EMF logs become metrics, alarms are
evaluated against them, pointer writes become "Parameter Store Change" events, and schedules
fire. Each produces the real event shapes, from what actually changed."""

from __future__ import annotations

import io
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ftserve_local.cloud import ACCOUNT, REGION


@dataclass(frozen=True)
class Datapoint:
    at: float
    namespace: str
    name: str
    dimensions: frozenset[tuple[str, str]]
    value: float


class MetricStore:
    """Datapoints extracted from EMF log lines (as CloudWatch Logs does), kept for a window."""

    def __init__(self, clients: Callable[[str], Any], keep_s: float = 900.0) -> None:
        self.clients = clients
        self.keep_s = keep_s
        self.points: deque[Datapoint] = deque()
        self._lock = threading.Lock()

    def ingest_emf(self, record: dict[str, Any]) -> None:
        now = time.time()
        metric_data = []
        for directive in record["_aws"].get("CloudWatchMetrics", []):
            for dim_set in directive.get("Dimensions", []):
                dims = frozenset((d, str(record[d])) for d in dim_set if d in record)
                for metric in directive.get("Metrics", []):
                    values = record.get(metric["Name"])
                    values = values if isinstance(values, list) else [values]
                    for value in values:
                        if not isinstance(value, int | float):
                            continue
                        point = Datapoint(
                            now, directive["Namespace"], metric["Name"], dims, float(value)
                        )
                        with self._lock:
                            self.points.append(point)
                        metric_data.append(
                            {
                                "MetricName": metric["Name"],
                                "Value": float(value),
                                "Unit": metric.get("Unit", "None"),
                                "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dims)],
                            }
                        )
                if metric_data:
                    self.clients("cloudwatch").put_metric_data(
                        Namespace=directive["Namespace"], MetricData=metric_data[:1000]
                    )
                    metric_data = []
        self._trim(now)

    def _trim(self, now: float) -> None:
        with self._lock:
            while self.points and now - self.points[0].at > self.keep_s:
                self.points.popleft()

    def values(
        self, namespace: str, name: str, dims: dict[str, str], window_s: float
    ) -> list[float]:
        wanted = frozenset(dims.items())
        since = time.time() - window_s
        with self._lock:
            return [
                p.value
                for p in self.points
                if p.at >= since
                and p.namespace == namespace
                and p.name == name
                and p.dimensions == wanted
            ]


class EmfStdout(io.TextIOBase):
    """Stands in for stdout: EMF lines feed the metric store, every line goes to the log."""

    def __init__(self, store: MetricStore, log: io.TextIOBase) -> None:
        self.store = store
        self.log = log
        self._buffer = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._buffer += text
            lines = self._buffer.split("\n")
            self._buffer = lines.pop()
        for line in lines:
            self.log.write(line + "\n")
            if line.startswith('{"_aws"'):
                try:
                    self.store.ingest_emf(json.loads(line))
                except (ValueError, KeyError):
                    pass
        self.log.flush()
        return len(text)

    def flush(self) -> None:
        self.log.flush()


def _stat(values: list[float], stat: str) -> float | None:
    if not values:
        return None
    if stat == "Sum":
        return sum(values)
    if stat == "Average":
        return sum(values) / len(values)
    if stat == "Maximum":
        return max(values)
    if stat == "Minimum":
        return min(values)
    if stat == "SampleCount":
        return float(len(values))
    if stat.startswith("p"):
        ordered = sorted(values)
        rank = max(
            0, min(len(ordered) - 1, int(round(float(stat[1:]) / 100 * len(ordered) + 0.5)) - 1)
        )
        return ordered[rank]
    return None


class AlarmEvaluator:
    """Evaluates the `ftserve-` alarms moto holds against recent datapoints; on a state change it
    sets the alarm's state in moto and puts the real "CloudWatch Alarm State Change" event.

    The window is each alarm's period, sliding (AWS evaluates whole periods once a minute): a
    breach is seen as soon as it happens, which is what a local run needs."""

    def __init__(
        self, clients: Callable[[str], Any], store: MetricStore, prefix: str = "ftserve-"
    ) -> None:
        self.clients = clients
        self.store = store
        self.prefix = prefix
        self.states: dict[str, str] = {}

    def evaluate_once(self) -> list[tuple[str, str]]:
        changes = []
        cw = self.clients("cloudwatch")
        for page in cw.get_paginator("describe_alarms").paginate(AlarmNamePrefix=self.prefix):
            for alarm in page["MetricAlarms"]:
                value = self._value(alarm)
                new = (
                    "INSUFFICIENT_DATA"
                    if value is None
                    else (
                        "ALARM"
                        if _breaches(value, alarm["ComparisonOperator"], alarm["Threshold"])
                        else "OK"
                    )
                )
                if new == "INSUFFICIENT_DATA" and alarm.get("TreatMissingData") == "notBreaching":
                    new = "OK"
                old = self.states.get(
                    alarm["AlarmName"], alarm.get("StateValue", "INSUFFICIENT_DATA")
                )
                if new != old:
                    self.states[alarm["AlarmName"]] = new
                    self._announce(alarm, old, new, value)
                    changes.append((alarm["AlarmName"], new))
        return changes

    def _value(self, alarm: dict[str, Any]) -> float | None:
        if alarm.get("Metrics"):
            return self._math(alarm["Metrics"])
        dims = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
        values = self.store.values(alarm["Namespace"], alarm["MetricName"], dims, alarm["Period"])
        return _stat(values, alarm.get("Statistic") or alarm.get("ExtendedStatistic", "Average"))

    def _math(self, metrics: list[dict[str, Any]]) -> float | None:
        """The one expression ftserve's alarms use: 100 * a / MAX([b, 1])."""
        import re

        found: dict[str, float | None] = {}
        for m in metrics:
            if "MetricStat" in m:
                stat = m["MetricStat"]
                metric = stat["Metric"]
                dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
                found[m["Id"]] = _stat(
                    self.store.values(
                        metric["Namespace"], metric["MetricName"], dims, stat["Period"]
                    ),
                    stat["Stat"],
                )
        for m in metrics:
            match = re.fullmatch(r"100 \* (\w+) / MAX\(\[(\w+), 1\]\)", m.get("Expression", ""))
            if match:
                a, b = found.get(match[1]), found.get(match[2])
                if a is None or b is None:
                    return None
                return 100 * a / max(b, 1)
        return None

    def _announce(self, alarm: dict[str, Any], old: str, new: str, value: float | None) -> None:
        now = datetime.now(UTC)
        reason = (
            f"Threshold Crossed: datapoint [{value}] was "
            f"{'' if new == 'ALARM' else 'not '}{_words(alarm['ComparisonOperator'])} the threshold "
            f"({alarm['Threshold']})."
        )
        cw = self.clients("cloudwatch")
        cw.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue=new, StateReason=reason)
        detail = {
            "alarmName": alarm["AlarmName"],
            "state": {"value": new, "reason": reason, "timestamp": now.isoformat()},
            "previousState": {"value": old, "reason": "", "timestamp": now.isoformat()},
            "configuration": {
                "description": alarm.get("AlarmDescription", ""),
                "metrics": _event_metrics(alarm),
            },
        }
        self.clients("events").put_events(
            Entries=[
                {
                    "Source": "aws.cloudwatch",
                    "DetailType": "CloudWatch Alarm State Change",
                    "Resources": [
                        f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm['AlarmName']}"
                    ],
                    "Detail": json.dumps(detail),
                }
            ]
        )

    def run(self, stop: threading.Event, interval_s: float = 0.5) -> None:
        while not stop.wait(interval_s):
            try:
                self.evaluate_once()
            except Exception:  # keep evaluating; a transient moto error is not fatal here
                continue


def _breaches(value: float, op: str, threshold: float) -> bool:
    return {
        "GreaterThanThreshold": value > threshold,
        "GreaterThanOrEqualToThreshold": value >= threshold,
        "LessThanThreshold": value < threshold,
        "LessThanOrEqualToThreshold": value <= threshold,
    }.get(op, False)


def _words(op: str) -> str:
    return {
        "GreaterThanThreshold": "greater than",
        "GreaterThanOrEqualToThreshold": "greater than or equal to",
        "LessThanThreshold": "less than",
        "LessThanOrEqualToThreshold": "less than or equal to",
    }.get(op, op)


def _event_metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The alarm's metrics in the event's shape (lower-case keys, dimensions as an object)."""

    def stat(metric: dict[str, Any], period: int, statistic: str) -> dict[str, Any]:
        return {
            "metric": {
                "namespace": metric["Namespace"],
                "name": metric["MetricName"],
                "dimensions": {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])},
            },
            "period": period,
            "stat": statistic,
        }

    if alarm.get("Metrics"):
        out = []
        for m in alarm["Metrics"]:
            if "MetricStat" in m:
                s = m["MetricStat"]
                out.append(
                    {
                        "id": m["Id"],
                        "metricStat": stat(s["Metric"], s["Period"], s["Stat"]),
                        "returnData": m.get("ReturnData", False),
                    }
                )
            else:
                out.append(
                    {
                        "id": m["Id"],
                        "expression": m["Expression"],
                        "label": m.get("Label", ""),
                        "returnData": m.get("ReturnData", True),
                    }
                )
        return out
    return [
        {
            "id": "m1",
            "returnData": True,
            "metricStat": stat(
                {
                    "Namespace": alarm["Namespace"],
                    "MetricName": alarm["MetricName"],
                    "Dimensions": alarm.get("Dimensions", []),
                },
                alarm["Period"],
                alarm.get("Statistic") or alarm.get("ExtendedStatistic", ""),
            ),
        }
    ]


class PointerWatcher:
    """Puts SSM's "Parameter Store Change" event for every pointer write (moto emits none)."""

    def __init__(self, clients: Callable[[str], Any], prefix: str) -> None:
        self.clients = clients
        self.prefix = prefix.rstrip("/")
        self.seen: dict[str, int] | None = None

    def poll_once(self) -> list[tuple[str, str]]:
        ssm = self.clients("ssm")
        current: dict[str, int] = {}
        kwargs: dict[str, Any] = {"Path": self.prefix, "Recursive": True, "MaxResults": 10}
        while True:
            page = ssm.get_parameters_by_path(**kwargs)
            current |= {p["Name"]: int(p["Version"]) for p in page["Parameters"]}
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        if self.seen is None:  # the first look only learns what is there
            self.seen = current
            return []
        seen = self.seen
        changes = [
            (name, "Create" if name not in seen else "Update")
            for name, version in current.items()
            if seen.get(name) != version
        ]
        changes += [(name, "Delete") for name in seen if name not in current]
        self.seen = current
        for name, operation in changes:
            self.clients("events").put_events(
                Entries=[
                    {
                        "Source": "aws.ssm",
                        "DetailType": "Parameter Store Change",
                        "Resources": [f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{name}"],
                        "Detail": json.dumps(
                            {
                                "operation": operation,
                                "name": name,
                                "type": "String",
                                "description": "",
                            }
                        ),
                    }
                ]
            )
        return changes

    def run(self, stop: threading.Event, interval_s: float = 0.25) -> None:
        while not stop.wait(interval_s):
            try:
                self.poll_once()
            except Exception:
                continue


def schedule_seconds(expression: str) -> float | None:
    import re

    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|second|seconds)\)", expression)
    if not match:
        return None
    unit = {"second": 1, "minute": 60, "hour": 3600}[match[2].rstrip("s")]
    return int(match[1]) * unit

"""Releases: promote (optionally as a canary), roll back, guard raw pointer writes, auto-revert.

Every pointer change is recorded in the model's history (who, when, from, to, why) *before* the
parameter is written, so the SSM change event that follows is recognised as already recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ftserve import eventbus
from ftserve.aws import error_code
from ftserve.errors import FtserveError, VersionNotFound
from ftserve.pointer import Pointer, parameter_name, parse_pointer
from ftserve.registry import HistoryEntry, Registry, VersionRecord, now_iso

# A pointer write by one of these ends any canary in progress (a guard's revert does not: it may
# put the canary's own split back).
ENDS_CANARY = {"promoted", "rolled_back", "auto_reverted", "canary_promoted"}
POINTER_ACTIONS = (
    "promoted",
    "canary_started",
    "canary_promoted",
    "rolled_back",
    "auto_reverted",
    "pointer_changed",
    "pointer_reverted",
)
GATE_RULE = re.compile(r"^([A-Za-z0-9_.-]+)\s*(>=|<=)\s*(-?[0-9.]+)$")


class ReleaseRefused(FtserveError):
    """A promotion or rollback that must not happen; the message says why."""


@dataclass(frozen=True)
class GateRule:
    metric: str
    op: str  # ">=" or "<="
    threshold: float

    def check(self, scores: dict[str, float]) -> str | None:
        value = scores.get(self.metric)
        if value is None:
            return f"eval has no {self.metric!r} (the gate needs {self})"
        ok = value >= self.threshold if self.op == ">=" else value <= self.threshold
        return None if ok else f"{self.metric}={value} fails the gate {self}"

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.threshold:g}"


def parse_gate(rules: list[str]) -> list[GateRule]:
    parsed = []
    for rule in rules:
        match = GATE_RULE.fullmatch(rule.strip())
        if not match:
            raise ValueError(f"gate rule {rule!r} must look like accuracy>=0.9 or toxicity<=0.05")
        parsed.append(GateRule(match[1], match[2], float(match[3])))
    return parsed


def parse_duration(text: str) -> timedelta:
    match = re.fullmatch(r"([0-9]+)\s*(s|m|h)", text.strip())
    if not match:
        raise ValueError(f"duration {text!r} must look like 90s, 30m or 2h")
    return timedelta(seconds=int(match[1]) * {"s": 1, "m": 60, "h": 3600}[match[2]])


@dataclass
class Releases:
    registry: Registry
    ssm: Any
    parameter_prefix: str
    bus_name: str
    cloudwatch: Any = None

    # --- reading --------------------------------------------------------------------------
    def pointer(self, model: str) -> tuple[str, int] | None:
        """The pointer's value and its SSM parameter version."""
        try:
            param = self.ssm.get_parameter(Name=parameter_name(self.parameter_prefix, model))[
                "Parameter"
            ]
        except Exception as exc:
            if error_code(exc) == "ParameterNotFound":
                return None
            raise
        return str(param["Value"]), int(param["Version"])

    def pointer_value(self, model: str) -> str | None:
        current = self.pointer(model)
        return current[0] if current else None

    def pointer_changes(self, model: str) -> list[HistoryEntry]:
        """Every recorded pointer write, in the order SSM applied them (parameter version)."""
        changes = [h for h in self.registry.history(model) if h.action in POINTER_ACTIONS]
        return sorted(changes, key=lambda h: int(h.details.get("parameter_version") or 0))

    def servable(self, model: str, version: str) -> VersionRecord:
        try:
            record = self.registry.get_version(model, version)
        except VersionNotFound as exc:
            raise ReleaseRefused(f"{model}@{version} is not registered") from exc
        if record.status != "serving":
            why = f": {record.status_reason}" if record.status_reason else ""
            raise ReleaseRefused(f"{model}@{version} is not servable (status {record.status}{why})")
        return record

    def check_pointer(self, model: str, value: str) -> Pointer:
        """Parse and check every version in a pointer value is servable; ReleaseRefused if not."""
        try:
            pointer = parse_pointer(value)
        except ValueError as exc:
            raise ReleaseRefused(f"pointer {value!r} is malformed: {exc}") from exc
        for version in pointer.versions:
            self.servable(model, version)
        return pointer

    # --- gate -------------------------------------------------------------------------------
    def set_gate(self, model: str, rules: list[str], actor: str) -> list[GateRule]:
        parsed = parse_gate(rules)
        self.registry.put_model_setting(model, "gate", [str(r) for r in parsed])
        self.registry.record_history(
            model, "gate_set", None, actor, "", {"gate": [str(r) for r in parsed]}
        )
        return parsed

    def gate(self, model: str) -> list[GateRule]:
        return parse_gate(self.registry.get_model_setting(model, "gate") or [])

    # --- changes ------------------------------------------------------------------------------
    def promote(
        self,
        model: str,
        version: str,
        actor: str,
        reason: str = "",
        force: bool = False,
        canary_percent: int | None = None,
        bake: timedelta | None = None,
    ) -> dict[str, Any]:
        record = self.servable(model, version)
        failures = [f for rule in self.gate(model) if (f := rule.check(record.manifest.eval))]
        if failures and not force:
            raise ReleaseRefused(
                f"{model}@{version} fails the gate: {'; '.join(failures)} "
                "(--force with --reason overrides, and is recorded)"
            )
        if force and failures and not reason:
            raise ReleaseRefused("--force needs a --reason (it is recorded in the history)")
        current = self.pointer_value(model)
        if canary_percent is not None:
            if not 1 <= canary_percent <= 99:
                raise ReleaseRefused("--canary must be a percentage from 1 to 99")
            if current is None:
                raise ReleaseRefused(f"{model} has no active version to run a canary against")
            control = parse_pointer(current).primary
            if control == version:
                raise ReleaseRefused(f"{model}@{version} is already the active version")
            value = f"{version}:{canary_percent},{control}:{100 - canary_percent}"
            bake_until = (datetime.now(UTC) + (bake or timedelta(minutes=30))).isoformat()
            details = {
                "from": current,
                "to": value,
                "forced": bool(failures),
                "gate_failures": failures,
                "control": control,
                "bake_until": bake_until,
            }
            self.registry.put_model_setting(
                model,
                "canary",
                {
                    "version": version,
                    "control": control,
                    "percent": canary_percent,
                    "bake_until": bake_until,
                    "started_at": now_iso(),
                },
            )
            self._change(model, "canary_started", version, value, actor, reason, details)
            return details
        details = {
            "from": current,
            "to": version,
            "forced": bool(failures),
            "gate_failures": failures,
        }
        self._change(model, "promoted", version, version, actor, reason, details)
        return details

    def rollback(
        self, model: str, actor: str, to: str | None = None, reason: str = ""
    ) -> dict[str, Any]:
        current = self.pointer_value(model)
        target = to or self.previous_active(model)
        if target is None:
            raise ReleaseRefused(f"{model} has no previous version to roll back to (use --to vN)")
        self.servable(model, target)
        if current is not None and current.strip() == target:
            raise ReleaseRefused(f"{model} already serves {target}")
        details = {"from": current, "to": target}
        self._change(
            model, "rolled_back", target, target, actor, reason, details, "ModelRolledBack"
        )
        return details

    def previous_active(self, model: str) -> str | None:
        """The version that served before the current one (what a rollback goes back to)."""
        current = self.pointer_value(model)
        current_primary = parse_pointer(current).primary if current else None
        for entry in reversed(self.pointer_changes(model)):
            before = entry.details.get("from")
            if not before:
                continue
            try:
                primary = parse_pointer(before).primary
            except ValueError:
                continue
            if primary != current_primary:
                return primary
        return None

    def _change(
        self,
        model: str,
        action: str,
        version: str | None,
        value: str,
        actor: str,
        reason: str,
        details: dict[str, Any],
        event: str = "ModelPromoted",
    ) -> None:
        written = self.ssm.put_parameter(
            Name=parameter_name(self.parameter_prefix, model),
            Value=value,
            Type="String",
            Overwrite=True,
            Description=f"ftserve active version of {model} (set by {actor})"[:1024],
        )
        if action in ENDS_CANARY:
            self.registry.put_model_setting(model, "canary", None)
        # The parameter's version orders the history, whatever order concurrent writers record in.
        details = details | {"parameter_version": int(written["Version"])}
        self.registry.record_history(model, action, version, actor, reason, details)
        eventbus.publish(
            event,
            {
                "model": model,
                "action": action,
                "version": version,
                "actor": actor,
                "reason": reason,
                **details,
            },
            self.bus_name,
        )

    # --- reactions to events ------------------------------------------------------------------
    def _recorded(self, model: str, parameter_version: int, wait_s: float) -> bool:
        """Whether a write is in the history; ftserve's own writers record just after writing,
        so an unrecorded version is looked for again once before it is taken as a raw write."""
        import time

        for attempt in range(2):
            if any(
                int(h.details.get("parameter_version") or 0) >= parameter_version
                for h in self.pointer_changes(model)
            ):
                return True
            if attempt == 0:
                time.sleep(wait_s)
        return False

    def guard(self, model: str, actor: str = "ssm", recorded_wait_s: float = 1.0) -> dict[str, Any]:
        """A pointer changed in SSM: record it if it is new to us, revert it if it is not servable."""
        current = self.pointer(model)
        if current is None:
            return {"result": "deleted"}
        value, parameter_version = current
        if self._recorded(model, parameter_version, wait_s=recorded_wait_s):
            return {"result": "already recorded"}
        changes = self.pointer_changes(model)
        before = str(changes[-1].details.get("to")) if changes else None
        try:
            self.check_pointer(model, value)
        except ReleaseRefused as exc:
            good = self._last_good_value(model, value)
            details = {"from": value, "to": good, "rejected": value, "reason": str(exc)}
            eventbus.publish(
                "PointerRejected",
                {
                    "model": model,
                    "value": value,
                    "reason": str(exc),
                    "serving": good,
                    "detected_by": "guard",
                },
                self.bus_name,
            )
            if good is None:
                return {"result": "rejected", "reverted_to": None}
            self._change(
                model,
                "pointer_reverted",
                parse_pointer(good).primary,
                good,
                "ftserve:guard",
                f"rejected {value!r}: {exc}",
                details,
                "ModelRolledBack",
            )
            return {"result": "reverted", "reverted_to": good}
        self.registry.record_history(
            model,
            "pointer_changed",
            parse_pointer(value).primary,
            actor,
            "direct write to the pointer parameter",
            {"from": before, "to": value, "parameter_version": parameter_version},
        )
        return {"result": "recorded", "value": value}

    def _last_good_value(self, model: str, bad: str) -> str | None:
        for entry in reversed(self.pointer_changes(model)):
            candidate = entry.details.get("to")
            if candidate and candidate != bad:
                try:
                    self.check_pointer(model, str(candidate))
                    return str(candidate)
                except ReleaseRefused:
                    continue
        return None

    def revert_alarming(self, model: str, version: str, alarm: str) -> dict[str, Any]:
        """Move traffic off an alarming version: to the control arm of a split, or to the version
        that served before it. Idempotent: a version no longer in the pointer is left alone. Never
        moves traffic onto a version that was itself reverted for an alarm (no flapping back)."""
        current = self.pointer_value(model)
        if current is None:
            return {"result": "no pointer"}
        pointer = parse_pointer(current)
        if version not in pointer.versions:
            return {"result": "not serving", "pointer": current}
        others = [(v, w) for v, w in pointer.arms if v != version]
        target = max(others, key=lambda arm: arm[1])[0] if others else self.previous_active(model)
        if not target:
            return {"result": "nothing to revert to", "pointer": current}
        if target in self.reverted_for_alarms(model):
            eventbus.publish(
                "PointerRejected",
                {
                    "model": model,
                    "value": target,
                    "serving": current,
                    "detected_by": "auto-revert",
                    "reason": f"{alarm} fired, but {model}@{target} was itself reverted for an alarm; "
                    "an operator must choose",
                },
                self.bus_name,
            )
            return {"result": "no safe version", "pointer": current, "blocked": target}
        details = {"from": current, "to": target, "alarm": alarm}
        self._change(
            model,
            "auto_reverted",
            target,
            target,
            f"alarm:{alarm}",
            f"{model}@{version} alarm {alarm} fired",
            details,
            "ModelRolledBack",
        )
        return {"result": "reverted", **details}

    def reverted_for_alarms(self, model: str) -> set[str]:
        """Versions an alarm moved traffic off, and no person has put back since."""
        bad: set[str] = set()
        for entry in self.pointer_changes(model):
            if entry.action == "auto_reverted":
                before = parse_pointer(str(entry.details["from"])).versions
                bad |= set(before) - set(parse_pointer(str(entry.details["to"])).versions)
            elif entry.action in ("promoted", "rolled_back", "pointer_changed", "canary_started"):
                bad -= set(parse_pointer(str(entry.details["to"])).versions)
        return bad

    def finish_canaries(self, models: list[str], alarm_states: Any) -> list[dict[str, Any]]:
        """Promote each canary whose bake time is over with its alarms quiet."""
        done = []
        now = datetime.now(UTC)
        for model in models:
            canary = self.registry.get_model_setting(model, "canary")
            if not canary or datetime.fromisoformat(canary["bake_until"]) > now:
                continue
            version = canary["version"]
            current = self.pointer_value(model) or ""
            if version not in (parse_pointer(current).versions if current else []):
                self.registry.put_model_setting(model, "canary", None)
                continue
            firing = [
                name for name, state in alarm_states(model, version).items() if state == "ALARM"
            ]
            if firing:
                continue  # the alarm's own event reverts it
            details = {"from": current, "to": version, "baked_since": canary["started_at"]}
            self._change(
                model,
                "canary_promoted",
                version,
                version,
                "ftserve:canary",
                "bake time over with alarms quiet",
                details,
            )
            done.append({"model": model, **details})
        return done


def alarm_target(event_detail: dict[str, Any]) -> tuple[str, str] | None:
    """(model, version) from an alarm's metric dimensions (or its name `ftserve-<m>-<v>-…`)."""
    for metric in event_detail.get("configuration", {}).get("metrics", []):
        dims = metric.get("metricStat", {}).get("metric", {}).get("dimensions", {})
        if "model" in dims and "version" in dims:
            return str(dims["model"]), str(dims["version"])
    match = re.fullmatch(
        r"ftserve-(?P<m>[a-z0-9][a-z0-9-]*)-(?P<v>v[0-9]+)-[a-z0-9-]+",
        str(event_detail.get("alarmName", "")),
    )
    return (match["m"], match["v"]) if match else None

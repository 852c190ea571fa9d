"""The pointer: SSM `<prefix>/<model>/active` says which version (or weighted split) serves.

Values: `v3`, or `v3:90,v2:10` for A/B and canary. Writing it is the whole rollback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ftserve.manifest import check_model_name, check_version

_ARM = re.compile(r"^(v[1-9][0-9]{0,8}):([0-9]{1,3})$")


@dataclass(frozen=True)
class Pointer:
    """Weighted arms, in the order written; a plain version is one arm of weight 100."""

    arms: tuple[tuple[str, int], ...]

    @property
    def versions(self) -> list[str]:
        return [v for v, _ in self.arms]

    @property
    def primary(self) -> str:
        """The arm with the most weight: the control of a split, or the one version."""
        return max(self.arms, key=lambda arm: arm[1])[0]

    def __str__(self) -> str:
        if len(self.arms) == 1:
            return self.arms[0][0]
        return ",".join(f"{v}:{w}" for v, w in self.arms)


def parse_pointer(value: str) -> Pointer:
    """`v3` or `v3:90,v2:10` → Pointer; ValueError naming what is wrong otherwise."""
    text = value.strip()
    if not text:
        raise ValueError("pointer is empty")
    if "," not in text and ":" not in text:
        return Pointer(((check_version(text), 100),))
    arms: list[tuple[str, int]] = []
    for part in text.split(","):
        match = _ARM.fullmatch(part.strip())
        if not match:
            raise ValueError(f"pointer arm {part.strip()!r} is not <version>:<weight> (e.g. v3:90)")
        arms.append((match[1], int(match[2])))
    versions = [v for v, _ in arms]
    if len(set(versions)) != len(versions):
        raise ValueError(f"pointer {value!r} names a version twice")
    if sum(w for _, w in arms) != 100:
        raise ValueError(f"pointer {value!r} weights add up to {sum(w for _, w in arms)}, not 100")
    arms = [(v, w) for v, w in arms if w > 0]
    return Pointer(tuple(arms))


def parameter_name(prefix: str, model: str) -> str:
    return f"{prefix.rstrip('/')}/{check_model_name(model)}/active"


def model_from_parameter(prefix: str, name: str) -> str | None:
    head = prefix.rstrip("/") + "/"
    if not name.startswith(head) or not name.endswith("/active"):
        return None
    model = name[len(head) : -len("/active")]
    return model if "/" not in model else None


def read_pointers(ssm: Any, prefix: str, models: list[str] | None = None) -> dict[str, str]:
    """Raw pointer values from SSM, nothing cached (callers own their TTL: powertools' default
    of 300 s would make a rollback take five minutes). The named models' with GetParameters
    (10 names a call), or every one under the prefix by path (powertools Parameters)."""
    if models is None:
        from aws_lambda_powertools.utilities.parameters import SSMProvider

        values = SSMProvider(boto3_client=ssm).get_multiple(
            prefix.rstrip("/"), force_fetch=True, recursive=True
        )
        return {
            str(name).partition("/")[0]: value
            for name, value in values.items()
            if str(name).partition("/")[2] == "active" and isinstance(value, str)
        }
    pointers: dict[str, str] = {}
    for start in range(0, len(models), 10):
        names = [parameter_name(prefix, m) for m in models[start : start + 10]]
        for param in ssm.get_parameters(Names=names)["Parameters"]:
            model = model_from_parameter(prefix, param["Name"])
            if model:
                pointers[model] = param["Value"]
    return pointers

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


def read_all(ssm: Any, prefix: str) -> dict[str, str]:
    """Every model's raw pointer value, by path: one call per 10 models (a page), not per model."""
    values: dict[str, str] = {}
    kwargs: dict[str, Any] = {"Path": prefix.rstrip("/"), "Recursive": True, "MaxResults": 10}
    while True:
        page = ssm.get_parameters_by_path(**kwargs)
        for param in page["Parameters"]:
            model = model_from_parameter(prefix, param["Name"])
            if model:
                values[model] = param["Value"]
        if not page.get("NextToken"):
            return values
        kwargs["NextToken"] = page["NextToken"]

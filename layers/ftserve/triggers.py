"""Parser models for the AWS events ftserve consumes that powertools has no model for."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _EventBridgeEvent(BaseModel):
    """The envelope fields ftserve reads (powertools' EventBridgeModel also requires `account`,
    which events put by other tools, moto's among them, may lack)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str = ""
    source: str
    detail_type: str = Field(alias="detail-type")


class ParameterChange(BaseModel):
    model_config = ConfigDict(extra="allow")

    operation: str
    name: str
    type: str | None = None


class ParameterStoreChangeEvent(_EventBridgeEvent):
    detail: ParameterChange


class AlarmState(BaseModel):
    model_config = ConfigDict(extra="allow")

    value: str
    reason: str = ""


class AlarmChange(BaseModel):
    model_config = ConfigDict(extra="allow")

    alarmName: str
    state: AlarmState
    previousState: AlarmState | None = None
    configuration: dict[str, Any] = {}


class AlarmStateChangeEvent(_EventBridgeEvent):
    detail: AlarmChange

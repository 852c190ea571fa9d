"""The invoke service: an OpenAI-compatible request → the version that serves it → its backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ftserve.auth import ApiKey, Forbidden
from ftserve.errors import FtserveError
from ftserve.manifest import check_version
from ftserve.registry import VersionRecord
from ftserve.routing import SERVABLE, ModelNotFound, PointerTable, RecordCache, choose
from ftserve.serving import Serving


class InvalidRequest(FtserveError):
    """The request body is not acceptable; `param` names the field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        self.param = param
        super().__init__(message)


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[Any] | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=200)
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    user: str | None = Field(default=None, max_length=256)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=None, ge=1, le=16)


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=200)
    prompt: str | list[str] | list[int] | list[list[int]]
    stream: bool = False
    user: str | None = Field(default=None, max_length=256)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    temperature: float | None = Field(default=None, ge=0, le=2)


def parse_request(kind: type[ChatRequest] | type[CompletionRequest], body: Any) -> Any:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object")
    try:
        request = kind.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        param = ".".join(str(p) for p in err["loc"]) or None
        raise InvalidRequest(f"Invalid value for '{param}': {err['msg']}", param=param) from exc
    if request.stream:
        raise InvalidRequest("Streaming is not supported yet: send stream=false", param="stream")
    return request


@dataclass
class Target:
    record: VersionRecord
    how: Literal["pointer", "split", "pinned"]


@dataclass
class Served:
    body: dict[str, Any]
    target: Target
    system_prompt_drift: bool


@dataclass
class Inference:
    pointers: PointerTable
    records: RecordCache
    serving: Serving
    strict_models: frozenset[str] = frozenset()
    backend_timeout_s: float = 25.0

    def target(self, requested: str, caller: str, key: ApiKey) -> Target:
        model, _, pinned = requested.partition("@")
        if not key.allows(model):
            raise Forbidden(f"This API key may not use the model '{model}'")
        if pinned:
            try:
                check_version(pinned)
            except ValueError as exc:
                raise ModelNotFound(f"The model '{requested}' does not exist: {exc}") from exc
            record = self.records.get(model, pinned)
            if record is None or record.status not in SERVABLE:
                raise ModelNotFound(f"The model '{requested}' does not exist or is not servable")
            return Target(record, "pinned")
        resolution = self.pointers.resolve(model)
        version = choose(resolution.pointer, model, caller)
        how: Literal["pointer", "split"] = (
            "split" if len(resolution.pointer.arms) > 1 else "pointer"
        )
        return Target(resolution.records[version], how)

    def complete(
        self,
        request: ChatRequest | CompletionRequest,
        caller: str,
        key: ApiKey,
        path: str,
        target: Target | None = None,
    ) -> Served:
        target = target or self.target(request.model, caller, key)
        body = request.model_dump(exclude_none=True, exclude={"stream"})
        drift = False
        if isinstance(request, ChatRequest):
            body["messages"], drift = self._pin_system_prompt(target.record, body["messages"])
        backend = self.serving.backend_for(target.record)
        if backend is None:
            from ftserve.errors import BackendUnavailable

            raise BackendUnavailable(
                f"No serving endpoint for {target.record.manifest.base_model}", retry_after=30
            )
        answer = backend.invoke(target.record, body, path=path, timeout_s=self.backend_timeout_s)
        answer["model"] = target.record.name
        return Served(answer, target, drift)

    def _pin_system_prompt(
        self, record: VersionRecord, messages: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], bool]:
        """Apply the version's trained system prompt when the request has none; a different one
        is served but counted as drift, or refused when the model is strict."""
        pinned = record.manifest.system_prompt
        if not pinned:
            return messages, False
        system = [m for m in messages if m.get("role") in ("system", "developer")]
        if not system:
            return [{"role": "system", "content": pinned}, *messages], False
        if all(m.get("content") == pinned for m in system):
            return messages, False
        if record.model in self.strict_models:
            raise InvalidRequest(
                f"The model '{record.model}' only accepts its trained system prompt "
                "(omit the system message to have it applied)",
                param="messages",
            )
        return messages, True

"""Secrets read from the environment; they never print, log or serialize."""

from __future__ import annotations

from typing import Any

from pydantic import GetCoreSchemaHandler, ValidationInfo
from pydantic_core import PydanticCustomError, core_schema


class Secret:
    """A credential value. `str()`, `repr()` and serialization never reveal it; `reveal()` does."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source  # the environment variable it came from; safe to show

    def reveal(self) -> str:
        """The secret itself, for the one place that must send it on the wire."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret(env={self.source}, value=***)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("secrets are not picklable")

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return core_schema.with_info_plain_validator_function(
            _validate_secret,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda s: "***"),
        )


def _validate_secret(value: Any, info: ValidationInfo) -> Secret:
    if isinstance(value, Secret):
        return value
    if not isinstance(value, dict) or set(value) != {"env"} or not isinstance(value["env"], str):
        # The message must not echo the value: it may be the secret itself.
        raise PydanticCustomError(
            "secret_not_env",
            "secrets are read from the environment: write {example}",
            {"example": "{env: VARIABLE_NAME}"},
        )
    name = value["env"]
    environ = (info.context or {}).get("environ", {})
    if name not in environ or environ[name] == "":
        raise PydanticCustomError(
            "secret_env_missing",
            "environment variable {name} is not set (it holds this secret)",
            {"name": name},
        )
    return Secret(environ[name], name)

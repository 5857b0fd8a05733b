"""Secrets read from the environment; they never print, log or serialize."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
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


# The values shipped in examples and templates (deploy/*.env.example, docs), and the phrases such
# placeholders are made of: never accepted as a real secret.
PLACEHOLDERS = frozenset(
    {
        "change-me-a-long-random-string",
        "change-me",
        "changeme",
        "unset-for-check",
        "secret",
        "link-secret",
    }
)
_PLACEHOLDER_WORDS = ("change-me", "changeme", "change_me", "replace-me", "replaceme", "your-")
MIN_SECRET_BYTES = 32
MIN_SECRET_BITS = 80.0  # estimated from the characters' spread; 32 random hex digits give ~115
MIN_DISTINCT = 6


def estimated_bits(value: str) -> float:
    """A rough estimate of a secret's entropy: its length times the Shannon entropy of its
    character distribution. Repeats and tiny alphabets score low; it cannot see a dictionary
    word, hence the length floor and the placeholder list beside it."""
    if not value:
        return 0.0
    counts = Counter(value)
    n = len(value)
    return n * -sum((c / n) * math.log2(c / n) for c in counts.values())


def weak_secret(value: str) -> str | None:
    """Why `value` is too weak to sign links (never echoing it); None when it is strong."""
    lowered = value.strip().lower()
    if lowered in PLACEHOLDERS or any(word in lowered for word in _PLACEHOLDER_WORDS):
        return "is a placeholder shipped with NetWatch"
    size = len(value.encode())
    if size < MIN_SECRET_BYTES:
        return f"is {size} bytes long; at least {MIN_SECRET_BYTES} are needed"
    if len(set(value)) < MIN_DISTINCT or estimated_bits(value) < MIN_SECRET_BITS:
        return "has too little randomness (repeated or too few different characters)"
    return None


def checks_every_secret(environ: object) -> bool:
    """Whether the loader was given `check-config --ignore-missing-secrets`'s environment, in
    which every variable is set to a stand-in (nothing to judge the strength of)."""
    return isinstance(environ, Mapping) and "\x00netwatch-any-variable" in environ

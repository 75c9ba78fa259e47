"""Secrets in the configuration are references, ``${NAME}``: an environment variable in
capitals, read when the secret is used, never stored in the file. Each value read is
registered with the log redaction, so no log line of the process shows it."""

import os
import re
from collections.abc import Mapping

from acf.domain.errors import InvalidValue
from acf.observability.redaction import register_secret

SECRET_REF = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")
"""A secret reference: ``${NAME}``, an environment variable in capitals."""


def resolve_secrets(
    value: str, environ: Mapping[str, str] | None = None, what: str = "http tool"
) -> str:
    """``value`` with each ``${NAME}`` replaced by the environment's ``NAME`` (registered
    with the log redaction: ``acf.observability.redaction.register_secret``)."""
    env = os.environ if environ is None else environ

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise InvalidValue(f"{what}: secret {name} is not set in the environment")
        register_secret(env[name])
        return env[name]

    return SECRET_REF.sub(lookup, value)


def secret_ref(value: str) -> str:
    """A pydantic field validator: ``value`` must be exactly one ``${NAME}`` reference."""
    if not SECRET_REF.fullmatch(value):
        raise ValueError("must reference a secret as ${NAME} (capitals, digits, _)")
    return value

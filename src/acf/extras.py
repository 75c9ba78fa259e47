"""The optional parts of acf and the extra that installs each. A module that needs a
library only some deployments use imports it in a guard, so that without the extra the
error says what to install::

    try:
        import aiosmtplib
    except ImportError as exc:
        raise missing_extra("email", "Email replies (SMTP)") from exc
"""

EXTRAS = {
    "postgres": "psycopg[binary,pool]",
    "redis": "redis",
    "email": "aiosmtplib",
    "otel": "opentelemetry-exporter-otlp-proto-http",
}
"""Each extra and what it installs (``pyproject.toml``)."""


def missing_extra(extra: str, needed_for: str) -> ImportError:
    """The error to raise when ``extra``'s library is not installed: ``needed_for``
    ("The distributed store (PostgreSQL)") and the command that installs it."""
    return ImportError(
        f"{needed_for} needs {EXTRAS[extra]}, which is not installed: pip install 'acf[{extra}]'"
    )

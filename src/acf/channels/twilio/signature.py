"""``X-Twilio-Signature``: how Twilio signs each webhook request (its documented algorithm).

Facts (``../shared/reference/channels.md``): take the full URL as Twilio requested it,
query string included; for a POST, append each form parameter's name and value, sorted by
name (case-sensitive), with no delimiters; HMAC-SHA1 with the account's auth token; base64.
Every received parameter counts (Twilio adds fields over time), values exactly as sent.
Pitfalls handled here: the URL is never rewritten (no trailing slash added or removed, the
port kept), and since proxies and URL parsers disagree on whether a default port is shown
(``https://host:443/`` versus ``https://host/``), both spellings are tried, as Twilio's own
libraries do.
"""

import base64
import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

SIGNATURE_HEADER = "X-Twilio-Signature"
DEFAULT_PORTS = {"http": 80, "https": 443}

Form = Sequence[tuple[str, str]]
"""Form parameters in the order received; a name may repeat."""


def signature(url: str, params: Form, auth_token: str) -> str:
    """The base64 HMAC-SHA1 Twilio sends for a POST of ``params`` to ``url``."""
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signature_ok(url: str, params: Form, header: str | None, auth_token: str) -> bool:
    """Whether ``header`` signs this request, for the URL or its default-port twin
    (constant-time comparison)."""
    if not header or not header.strip():
        return False
    given = header.strip().encode()
    return any(
        hmac.compare_digest(signature(candidate, params, auth_token).encode(), given)
        for candidate in url_spellings(url)
    )


def url_spellings(url: str) -> list[str]:
    """``url`` as given, then the same URL with its scheme's default port shown when it is
    implicit, or hidden when it is explicit. Nothing else about the URL changes."""
    parts = urlsplit(url)
    default = DEFAULT_PORTS.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        return [url]
    if default is None or parts.hostname is None or port not in (None, default):
        return [url]
    if port is None:
        netloc = f"{parts.netloc}:{default}"
    else:
        netloc = parts.netloc.removesuffix(f":{default}")
    return [url, urlunsplit(parts._replace(netloc=netloc))]

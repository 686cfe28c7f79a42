"""Storage URLs as they may be shown: every credential replaced by ***."""

from __future__ import annotations

import re
from pathlib import Path

from tuner.wording import printable

# Query keys whose values are shown; any other value may carry a credential (`odbc_connect`'s
# whole connection string with its PWD=, a driver's own `pw=`) and is hidden.
_SHOWN = frozenset({"sslmode", "connect_timeout", "application_name", "target_session_attrs", "gssencmode",
                    "client_encoding", "charset", "timeout", "mode", "uri", "driver"})
_HIDDEN = "***"


def raw_userinfo(url: str) -> str | None:
    """What stands before the last '@' of the URL's authority: a password holding an unescaped
    '@' would be cut there by a URL parser, and its rest taken for the host."""
    _, sep, rest = url.partition("://")
    authority = rest.split("/", 1)[0]
    return authority.rpartition("@")[0] if sep and "@" in authority else None


def redact(url: str) -> str:
    """The URL with its password and every query value that may bear a credential replaced by
    ***, control characters escaped."""
    from sqlalchemy.engine import make_url

    userinfo = raw_userinfo(url)
    if userinfo is not None and "@" in userinfo:  # not parseable as its writer meant it
        scheme, _, rest = url.partition("://")
        return printable(f"{scheme}://{userinfo.split(':', 1)[0].split('@')[0]}:***@{rest.split('/', 1)[0].rpartition('@')[2]}/***")
    try:
        parsed = make_url(url)
        query = {k: (v if _shown(k) else _HIDDEN) for k, v in parsed.query.items()}
        return printable(parsed.set(query=query).render_as_string(hide_password=True).replace("%2A%2A%2A", _HIDDEN))
    except Exception:  # not parseable as a URL: show only its scheme, or all of it where no credential fits
        if "://" in url:
            return printable(url.split("://")[0][:50]) + "://***"
        return _HIDDEN if ":" in url or "@" in url else printable(url[:200])


def scrub(text: str, url: str) -> str:
    """`text` (an error message, say) with every secret of `url` replaced by ***."""
    from urllib.parse import quote

    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return text.replace(url, redact(url))
    secrets = [str(parsed.password)] if parsed.password else []
    userinfo = raw_userinfo(url)
    if userinfo and ":" in userinfo:
        secrets.append(userinfo.split(":", 1)[1])
    for key, value in parsed.query.items():
        if not _shown(key):
            secrets += [value] if isinstance(value, str) else list(value)
    text = text.replace(url, redact(url))
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        for form in {secret, quote(secret, safe="")}:
            # As a whole token only: a password "e" took the e out of "connection failed".
            text = re.sub(rf"(?<!\w){re.escape(form)}(?!\w)", _HIDDEN, text)
    return text


def _shown(key: str) -> bool:
    return key.lower() in _SHOWN


def default_storage_url(results_dir: Path) -> str:
    return f"sqlite:///{(results_dir / 'tune.db').resolve()}"

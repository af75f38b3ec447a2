"""Shared by the HTTP clients: how a reply body is shown in an error or a log line."""

from __future__ import annotations

import re

_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def brief(text: str, limit: int = 300) -> str:
    """A reply body fit for one log line: an HTML error page by its title, anything else cut short."""
    title = _TITLE.search(text)
    return (title.group(1) if title else " ".join(text.split()))[:limit]

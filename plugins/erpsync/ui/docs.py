"""Serving files of the staging root to the browser: Data Docs pages and GX's shared static folder.

A URL path is split into segments, each refused if it could leave its folder (``..``, ``.``,
empty, a backslash or a control character) and every file must have a known type. Pages are served
with a Content-Security-Policy that runs no script and loads nothing from other hosts: GX writes
data values into its pages without escaping them (a WDT value such as ``<img onerror=…>`` would run
in Airflow's origin), and its scripts and styles come from CDNs an offline machine cannot reach.
"""

from __future__ import annotations

import html
import re
from pathlib import PurePosixPath

from erpsync.staging import StoragePath

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".png": "image/png",
    ".gif": "image/gif",
    ".jpg": "image/jpeg",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".otf": "font/otf",
    ".ttf": "font/ttf",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
}
# GX pages: their own inline styles and our stylesheet; images from this app; no script at all
DOCS_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; "
    "script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,39}$")  # a GX version folder under _gx_static
_SEGMENT = re.compile(r"^[^/\\\x00-\x1f\x7f]{1,255}$")


def segments(path: str) -> list[str] | None:
    """The segments of a relative URL path; None if any could name something outside its folder."""
    parts = path.split("/")
    if any(p in (".", "..") or not _SEGMENT.match(p) for p in parts):
        return None
    return parts


def resolve(base: StoragePath, path: str) -> StoragePath | None:
    """The file ``path`` under ``base`` if it is a safe path to a file of a served type."""
    parts = segments(path)
    if parts is None or PurePosixPath(parts[-1]).suffix.lower() not in TYPES:
        return None
    target = base
    for part in parts:
        target = target / part
    try:
        return target if target.is_file() else None
    except OSError:
        return None


def content_type(path: StoragePath) -> str:
    return TYPES[PurePosixPath(path.name).suffix.lower()]


_HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)
_BODY = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


def dress(page: str, stylesheet: str, back: str, back_text: str) -> str:
    """A GX page with our stylesheet (readable without GX's CDN styles) and a link back to the report."""
    link = f'<link rel="stylesheet" href="{html.escape(stylesheet)}">'
    bar = f'<div class="erpsync-bar"><a href="{html.escape(back)}">{html.escape(back_text)}</a></div>'
    page, found = _HEAD_END.subn(lambda m: link + m.group(0), page, count=1)
    if not found:
        page = link + page
    page, found = _BODY.subn(lambda m: m.group(0) + bar, page, count=1)
    return page if found else bar + page

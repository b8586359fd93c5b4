"""The links a notification may carry: only to the GitHub web host behind ``api_url``.

A run's ``html_url`` is text from GitHub's answer; a message button that opens whatever
it says would open any site. So a link is kept only when it points at the web host
that matches the configured ``github.api_url`` (``https://api.github.com`` ->
``https://github.com``; a GitHub Enterprise Server ``https://HOST/api/v3`` ->
``https://HOST``), with the same scheme, and links the bridge makes itself (the
repository's Actions tab) are built from that host, never from text.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MAX_URL = 500  # GitHub's own run URLs are under 200 characters
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")


def web_origin(api_url: str) -> str:
    """The ``scheme://host[:port]`` of GitHub's web pages for the API at ``api_url``."""
    parts = urlsplit(api_url)
    host = parts.netloc.lower()
    if parts.path.rstrip("/") == "" and host.startswith("api."):
        host = host.removeprefix("api.")  # github.com, and GHE.com's api.SUBDOMAIN.ghe.com
    return f"{parts.scheme.lower()}://{host}"


def run_link(origin: str, url: str | None) -> str | None:
    """``url`` when it is a page on ``origin`` (GitHub's web host), else None."""
    if not origin or not url or len(url) > MAX_URL or not _URL_CHARS.fullmatch(url):
        return None
    parts = urlsplit(url)
    same_origin = f"{parts.scheme.lower()}://{parts.netloc.lower()}" == origin
    if not same_origin or not parts.path.startswith("/") or len(parts.path) < 2:
        return None
    return url


def actions_link(origin: str, repository: str) -> str | None:
    """The repository's Actions tab on ``origin``, when ``repository`` is ``owner/name``."""
    if not origin or not _REPOSITORY.fullmatch(repository) or ".." in repository:
        return None
    return f"{origin}/{repository}/actions"

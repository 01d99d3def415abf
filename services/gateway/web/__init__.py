"""The web page the gateway serves at `GET /`: one plain HTML file with its script inline (no
build step, nothing fetched from elsewhere, so it works offline)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def page_html() -> str:
    return files(__package__).joinpath("index.html").read_text(encoding="utf-8")

"""User text (a label from a user's file, a file name) shown as text: Streamlit renders captions, headers and
messages as Markdown, so an image link in a label would be fetched by the browser. Every ASCII punctuation
character gets Markdown's backslash escape, which renders it literally."""

from __future__ import annotations

import re

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # the ASCII punctuation CommonMark lets a backslash escape


def plain(text: object) -> str:
    """``text`` as Markdown that shows exactly these characters (no links, images, emphasis or directives)."""
    return _PUNCTUATION.sub(r"\\\1", str(text))


def chart_text(text: object) -> str:
    """``text`` for a Plotly trace name or hover template, shown as it is: Plotly renders a subset of HTML there
    (``<b>``, ``<a href>``) and fills in ``%{...}``; entities it shows as the characters they stand for."""
    out = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return out.replace("%{", "%&#123;")

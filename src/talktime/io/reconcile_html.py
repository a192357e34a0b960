"""The reconciliation report as an HTML page: the values of ``core.reconcile.render.html_values`` through the
``reconcile.html.j2`` template (summary first, flagged lines first and marked with a word)."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from talktime.core.reconcile.model import Summary
from talktime.core.reconcile.render import html_values


def as_html(summary: Summary, lines: list[dict[str, Any]]) -> str:
    environment = Environment(
        loader=PackageLoader("talktime.io", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template("reconcile.html.j2").render(**html_values(summary, lines))

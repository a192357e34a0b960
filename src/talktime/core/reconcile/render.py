"""Report formats for a reconciliation: JSON document, CSV lines, a terminal table and HTML.

Pure: values in, text out. Seconds print as exact decimal strings.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from talktime.core.decimals import text
from talktime.core.reconcile.model import CAUSES, Summary

SECOND_COLUMNS = ("internal", "expected", "provider", *CAUSES, "unexplained")
LINE_COLUMNS = ("class", "line", "provider_id", "record_id", *SECOND_COLUMNS, "flagged", "amount")


def line_dicts(rows: Iterable[dict[str, Any]], scale: int) -> list[dict[str, Any]]:
    """Engine rows (integers at ``scale``) as report lines (decimal strings of seconds)."""
    out = []
    for row in rows:
        line = {name: row.get(name) for name in LINE_COLUMNS}
        for name in SECOND_COLUMNS:
            line[name] = text(Decimal(int(row[name] or 0)).scaleb(-scale))
        if row.get("amount") is not None:
            line["amount"] = text(row["amount"])
        out.append(line)
    return out


def as_json_document(summary: Summary, lines: list[dict[str, Any]]) -> dict[str, Any]:
    return {"summary": summary.as_dict(), "lines": lines}


def as_csv(lines: list[dict[str, Any]]) -> str:
    handle = io.StringIO()
    writer = csv.DictWriter(handle, fieldnames=list(LINE_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(lines)
    return handle.getvalue()


def summary_rows(summary: Summary) -> list[tuple[str, str, str]]:
    """(what, seconds, in the policy's unit) rows for the table and HTML reports."""

    def row(name: str, seconds: Decimal) -> tuple[str, str, str]:
        return name, text(seconds), summary.in_unit(seconds)

    rows = [
        row("provider billed", summary.provider_billable_seconds),
        row("our tally", summary.internal_billable_seconds),
        row("gap", summary.gap_seconds),
    ]
    rows += [row(f"  {cause}", seconds) for cause, seconds in summary.causes.items() if seconds != 0]
    rows.append(row("  UNEXPLAINED", summary.unexplained_seconds))
    return rows


def as_table(summary: Summary, lines: list[dict[str, Any]], limit: int = 20) -> str:
    """A plain-text report: the story, the totals by cause, and the flagged lines."""
    d = summary.as_dict()
    out = [summary.story(), ""]
    counts = ", ".join(
        f"{k} {d[k]}" for k in ("matched", "mismatched", "provider_only", "internal_only", "duplicates")
    )
    out.append(counts)
    out.append("")
    out.append(f"{'':24} {'seconds':>16} {summary.unit + 's':>12}")
    for name, seconds, unit in summary_rows(summary):
        out.append(f"{name:24} {seconds:>16} {unit:>12}")
    flagged = [line for line in lines if line["flagged"]]
    if flagged:
        out += ["", f"flagged lines ({len(flagged)}, first {min(limit, len(flagged))}):"]
        for line in flagged[:limit]:
            out.append(
                f"  line {line['line']} {line['provider_id'] or ''} record {line['record_id'] or '-'}: "
                f"provider {line['provider']} s, expected {line['expected']} s, "
                f"unexplained {line['unexplained']} s"
            )
    return "\n".join(out) + "\n"


def as_html(summary: Summary, lines: list[dict[str, Any]]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(n)}</td><td>{e(s)}</td><td>{e(u)}</td></tr>" for n, s, u in summary_rows(summary)
    )
    head = "".join(f"<th>{e(c)}</th>" for c in LINE_COLUMNS)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{e('' if line[c] is None else str(line[c]))}</td>" for c in LINE_COLUMNS)
        + "</tr>"
        for line in lines
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>talktime reconcile</title></head><body>"
        f"<h1>Reconciliation: {e(summary.policy)}</h1><p>{e(summary.story())}</p>"
        f"<table><tr><th></th><th>seconds</th><th>{e(summary.unit)}s</th></tr>{rows}</table>"
        f"<h2>Lines</h2><table><tr>{head}</tr>{body}</table></body></html>\n"
    )

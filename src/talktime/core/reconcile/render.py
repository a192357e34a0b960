"""Report formats for a reconciliation: JSON document, CSV lines, a terminal table, and the values of the HTML
page (``talktime.io.reconcile_html`` renders them with its template).

Pure: values in, text out. Machine formats (JSON, CSV) write every number as an exact decimal string
(seconds exact, amounts exact to 12 places); the table and the HTML print amounts at the statement's
precision. A flagged line says why in words (``seconds``, ``price``), never by colour alone.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from talktime.core.decimals import text
from talktime.core.reconcile.model import CAUSES, MONEY_COLUMNS, REPORT_COLUMNS, Summary, shown

SECOND_COLUMNS = ("internal", "expected", "provider", *CAUSES, "unexplained")
#: Every column of a report line (JSON and CSV), in order.
LINE_COLUMNS = REPORT_COLUMNS


def line_dicts(rows: Iterable[dict[str, Any]], scale: int) -> list[dict[str, Any]]:
    """Engine rows (seconds as integers at ``scale``) as report lines: every number exact, as text."""
    out = []
    for row in rows:
        line = {name: row.get(name) for name in LINE_COLUMNS}
        for name in SECOND_COLUMNS:
            line[name] = text(Decimal(int(row[name] or 0)).scaleb(-scale))
        for name in ("amount", *MONEY_COLUMNS):
            value = row.get(name)
            line[name] = None if value is None else text(value)
        line["flags"] = row.get("flags") or ""
        out.append(line)
    return out


def as_json_document(summary: Summary, lines: list[dict[str, Any]]) -> dict[str, Any]:
    return {"summary": summary.as_dict(), "lines": lines}


def as_csv(lines: list[dict[str, Any]], summary: Summary | None = None) -> str:
    """One row per line; with a summary, a ``rate_source`` column names where the rate came from."""
    source = "" if summary is None or summary.money is None else summary.money["rate_source"]
    columns = [*LINE_COLUMNS, "rate_source"]
    handle = io.StringIO()
    writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(
        {**line, "rate_source": source if line.get("rate") is not None else ""} for line in lines
    )
    return handle.getvalue()


def summary_rows(summary: Summary) -> list[tuple[str, str, str, str]]:
    """(what, seconds, in the policy's unit, amount) rows for the table and HTML reports."""
    money = summary.money
    places = None if money is None else money["places"]

    def amount(key: str | None, cause: str | None = None) -> str:
        if money is None:
            return ""
        value = money["causes"].get(cause) if cause else money.get(key or "")
        return shown(value, places)

    def row(
        name: str, seconds: Decimal | None, key: str | None = None, cause: str | None = None
    ) -> tuple[str, str, str, str]:
        if seconds is None:
            return name, "", "", amount(key, cause)
        return name, text(seconds), summary.in_unit(seconds), amount(key, cause)

    rows = [
        row("provider billed", summary.provider_billable_seconds, "provider_amount"),
        row("our tally", summary.internal_billable_seconds, "internal_amount"),
        row("gap", summary.gap_seconds, "gap_amount"),
    ]
    rows += [row(f"  {c}", s, cause=c) for c, s in summary.causes.items() if s != 0]
    rows.append(row("  UNEXPLAINED", summary.unexplained_seconds, "unexplained_amount"))
    if money is not None:
        rows.append(row("  PRICE (amount - due)", None, cause="price"))
        if Decimal(money["causes"]["attempt_fees"]) != 0:
            rows.append(row("  attempt fees", None, cause="attempt_fees"))
        rows.append(row("due at the rate", summary.provider_billable_seconds, "due_amount"))
        rows.append(row("our metering at the rate", summary.expected_seconds, "expected_amount"))
    return rows


def _why(line: dict[str, Any], places: int | None) -> str:
    """A flagged line's problem in words."""
    said = []
    if "seconds" in line["flags"]:
        said.append(
            f"SECONDS provider {line['provider']} s, expected {line['expected']} s, "
            f"unexplained {line['unexplained']} s"
        )
    if "price" in line["flags"]:
        price = Decimal(line["price"])
        sign = "+" if price > 0 else "-"
        said.append(
            f"PRICE charged {shown(line['amount'], places)}, due {shown(line['due'], places)} "
            f"at {line['rate']} ({sign}{shown(str(abs(price)), places)})"
        )
    return "; ".join(said)


def _signed(value: str | None, places: int | None) -> str:
    """A price difference at the statement's precision with its sign (``+0.02450``): an overcharge reads as
    one."""
    written = shown(value, places)
    return f"+{written}" if value is not None and Decimal(value) > 0 else written


def as_table(summary: Summary, lines: list[dict[str, Any]], limit: int = 20) -> str:
    """A plain-text report: the story, the rate, the totals by cause (seconds, money), the flagged lines."""
    d = summary.as_dict()
    money = summary.money
    places = None if money is None else money["places"]
    out = [summary.story(), ""]
    counts = ", ".join(
        f"{k} {d[k]}"
        for k in ("matched", "mismatched", "mispriced", "provider_only", "internal_only", "duplicates")
    )
    out.append(counts)
    if money is not None:
        out.append(f"rate: {money['rate_per_unit']} ({money['pricing']})")
        currency = money["currency"] or ""
    else:
        out.append("rate: none (no cost card, no --rate and no amounts on the statement): seconds only")
        currency = ""
    out.append("")
    amount_head = f"amount {currency}".strip() if money is not None else ""
    out.append(f"{'':28} {'seconds':>16} {summary.unit + 's':>12} {amount_head:>16}")
    for name, seconds, unit, amount in summary_rows(summary):
        out.append(f"{name:28} {seconds:>16} {unit:>12} {amount:>16}".rstrip())
    flagged = [line for line in lines if line["flagged"]]
    if flagged:
        out += ["", f"flagged lines ({len(flagged)}, first {min(limit, len(flagged))}):"]
        for line in flagged[:limit]:
            out.append(
                f"  FLAGGED line {line['line'] if line['line'] is not None else '-'} "
                f"{line['provider_id'] or ''} record {line['record_id'] or '-'}: {_why(line, places)}"
            )
    return "\n".join(out) + "\n"


def html_values(summary: Summary, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """What the HTML page shows: the summary first, then every line with its causes in words."""
    money = summary.money
    places = None if money is None else money["places"]
    shown_lines = []
    for line in lines:
        causes = ", ".join(
            f"{c.replace('_', ' ')} {'+' if not line[c].startswith('-') else ''}{line[c]} s"
            for c in CAUSES
            if line[c] != "0"
        )
        shown_lines.append(
            {
                "flag": line["flags"].upper().replace(" ", " + ") if line["flagged"] else "",
                "why": _why(line, places) if line["flagged"] else "",
                "class": line["class"].replace("_", " "),
                "line": "" if line["line"] is None else line["line"],
                "provider_id": line["provider_id"] or "",
                "record_id": line["record_id"] or "",
                "provider": line["provider"],
                "expected": line["expected"],
                "unexplained": line["unexplained"],
                "causes": causes,
                "amount": shown(line["amount"], places),
                "due": shown(line["due"], places),
                "price": _signed(line["price"], places),
            }
        )
    counts = summary.as_dict()
    return {
        "policy": summary.policy,
        "story": summary.story(),
        "unit": summary.unit,
        "money": money,
        "currency": "" if money is None else money["currency"] or "",
        "counts": [
            (k.replace("_", " "), counts[k])
            for k in ("matched", "mismatched", "mispriced", "provider_only", "internal_only", "duplicates")
        ],
        "flagged": summary.flagged_lines,
        "rows": summary_rows(summary),
        "lines": sorted(shown_lines, key=lambda x: x["flag"] == ""),
    }

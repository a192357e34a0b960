"""Policies in plain words: the one-line rule for listings, the methodology a provider should publish, and
the full page a transparent platform publishes (``methodology_page``: Markdown or HTML, with a worked example
metered by the reference meter).

Generated from the policy itself, so what it says cannot drift from what is billed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import cast

from talktime.core.decimals import text
from talktime.core.metering.example import example_call
from talktime.core.metering.meter import meter_records
from talktime.core.metering.policy import MeteringParams, Policy, PolicyVersion

_BASIS_PLAIN = {
    "connection": "connection time, from connect (started_at) to disconnect (ended_at)",
    "answered": "answered time, from answer (answered_at) to hang-up (ended_at); ringing is free",
    "audio_span": "the audio span, from the first audio byte to the last",
    "audio_sent": "the seconds of audio sent (audio_seconds), silence included",
    "speech": "speech only (speech_seconds): silence and noise are not counted",
    "provider_reported": "the duration the provider reports (provider_reported_seconds)",
}
_BASIS_SHORT = {
    "connection": "connection",
    "answered": "answered",
    "audio_span": "audio span",
    "audio_sent": "audio sent",
    "speech": "speech",
    "provider_reported": "provider-reported",
}


def _seconds(value: Decimal) -> str:
    return f"{text(value)} s"


def one_line(params: MeteringParams) -> str:
    """E.g. ``answered, 60/60 up, min 60 s, per record``."""
    basis = " | ".join(_BASIS_SHORT[b] for b in params.bases)
    parts = [f"max({basis})" if len(params.bases) > 1 else basis, params.rounding_label()]
    if params.minimum_seconds:
        parts.append(f"min {_seconds(params.minimum_seconds)}")
    if params.free_below_seconds:
        parts.append(f"free under {_seconds(params.free_below_seconds)}")
    if params.channels == "per_channel":
        extra = "" if params.extra_channel_factor == 1 else f" (extra x{text(params.extra_channel_factor)})"
        parts.append("per channel" + extra)
    if params.open_cap_seconds:
        parts.append(f"cap {_seconds(params.open_cap_seconds)}")
    if params.multiplier:
        parts.append(f"x {params.multiplier.field}/{text(params.multiplier.per)}")
    if params.rules:
        parts.append(f"{len(params.rules)} conditional rule(s)")
    parts.append(f"per {params.scope}")
    return ", ".join(parts)


def methodology(policy: Policy) -> str:
    """The policy's methodology in plain words, newest version first, older versions listed after."""
    lines = [f"{policy.name} ({policy.id})", ""]
    if policy.description:
        lines += [policy.description.strip(), ""]
    lines.append(f"Billed unit: {policy.unit}. Confidence in the published rule: {policy.confidence or '-'}.")
    lines.append("")
    for index, version in enumerate(reversed(policy.versions)):
        heading = "In force" if index == 0 else "Earlier"
        lines.append(
            f"{heading} from {version.effective_from.date().isoformat()}: {version.note}".rstrip(": ")
        )
        lines += [f"  - {sentence}" for sentence in _sentences(policy, version)]
        lines.append("")
    if policy.source:
        lines.append("Sources:")
        lines += [f"  - {source}" for source in policy.source]
    return "\n".join(lines).rstrip() + "\n"


def _sentences(policy: Policy, version: PolicyVersion) -> list[str]:
    p = version.params
    out: list[str] = []
    if len(p.bases) == 1:
        out.append(f"What counts: {_BASIS_PLAIN[p.bases[0]]}.")
    else:
        options = "; ".join(_BASIS_PLAIN[b] for b in p.bases)
        out.append(f"What counts: the larger of {options}.")
    counted = "every kind of record" if p.kinds is None else "records of kind " + ", ".join(p.kinds)
    out.append(f"Who counts: {counted}; each record (leg, participant, connection) is billed on its own.")
    if p.meters:
        split = ", ".join(f"{kind} on meter {name!r}" for kind, name in p.meters.items())
        out.append(f"Meters: {split}; everything else on {policy.default_meter!r}.")
    out.append("Billed outcomes: " + ", ".join(p.billed_statuses) + "; any other outcome bills nothing.")
    if p.free_below_seconds:
        out.append(f"Short calls: under {_seconds(p.free_below_seconds)} of raw time bill nothing.")
    out.append(_rounding_sentence(p))
    if p.minimum_seconds:
        out.append(f"Minimum: a billed {p.scope} of any length bills at least {_seconds(p.minimum_seconds)}.")
    if p.channels == "per_call":
        out.append("Channels: one charge whatever the number of channels.")
    elif p.extra_channel_factor == 1:
        out.append("Channels: each channel is billed (a stereo call bills twice its duration).")
    else:
        out.append(
            f"Channels: the first channel in full, each extra channel at x{text(p.extra_channel_factor)}."
        )
    if p.open_cap_seconds:
        out.append(
            f"Sessions left open are closed and billed at {_seconds(p.open_cap_seconds)}; "
            "longer sessions are capped there."
        )
    for segment in p.segments:
        out.append(f"Segment: {segment.name} ({segment.field}) billed at x{text(segment.factor)}.")
    if p.factor != 1:
        out.append(f"Factor: billed time is multiplied by {text(p.factor)}.")
    if p.multiplier:
        m = p.multiplier
        out.append(
            f"Multiplier: when {m.field} exceeds {text(m.above)}, billed time is multiplied by "
            f"{m.field}/{text(m.per)}, rounded {m.direction} to {_seconds(m.round_to_seconds)}."
        )
    for rule in p.rules:
        conditions = " and ".join(f"{k} = {v}" for k, v in rule.when.items())
        changes = ", ".join(f"{k} = {v}" for k, v in rule.set.items())
        out.append(f"Rule {rule.name!r}: when {conditions}: {changes}.")
    return out


def _rounding_sentence(p: MeteringParams) -> str:
    where = {
        "record": "each record on its own, before anything is summed",
        "session": "each session's total (its records summed first)",
        "period": f"each customer's calendar-month total ({p.period_timezone})",
    }[p.scope]
    if p.rounding == "exact":
        return f"Rounding: none; billed to the exact duration, applied to {where}."
    first, step = p.first_block_seconds, p.increment_seconds
    if first == step:
        return f"Rounding: {p.rounding} to a multiple of {_seconds(step)}, applied to {where}."
    return (
        f"Rounding: the first {_seconds(first)} bill whole, then blocks of {_seconds(step)} rounded "
        f"{p.rounding} ({p.rounding_label()}), applied to {where}."
    )


# --- the published methodology page ------------------------------------------------------------------------

_INCLUDED = {
    "connection": ("included (time counts from connect, ringing too)", "included"),
    "answered": ("not included (ringing is free)", "included"),
    "audio_span": (
        "not included (time counts from the first audio byte)",
        "included, between first and last audio",
    ),
    "audio_sent": ("not included (only audio sent counts)", "included, as part of the audio sent"),
    "speech": ("not included", "not included (only speech counts)"),
    "provider_reported": ("as the provider reports it", "as the provider reports it"),
}
#: The worked example: a stereo call with 2 s of ringing, then 47.3 s answered, 31 s of it speech.
EXAMPLE_SETUP = Decimal(2)
EXAMPLE_ANSWERED = Decimal("47.3")
EXAMPLE_SPEECH = Decimal(31)
EXAMPLE_CHANNELS = 2

Block = tuple[str, object]
_TableBody = tuple[tuple[str, ...], list[tuple[str, ...]]]


def methodology_page(policy: Policy, fmt: str = "md") -> str:
    """The page a transparent platform publishes for ``policy``, as Markdown (``md``) or HTML (``html``).

    Every sentence comes from the policy, and the worked example is metered by the reference meter under
    it, so the page changes when the policy does and cannot drift from what is billed.
    """
    blocks = _page(policy)
    return _html(policy, blocks) if fmt == "html" else _markdown(blocks)


def _page(policy: Policy) -> list[Block]:
    version = policy.current
    p = version.params
    sentences = _sentences(policy, version)

    def about(*prefixes: str) -> list[str]:
        return [s for s in sentences if s.startswith(prefixes)]

    unit_seconds = text(policy.unit_seconds)
    blocks: list[Block] = [("h1", f"How {policy.name} bills: what a billable {policy.unit} is")]
    if policy.description:
        blocks.append(("p", policy.description.strip()))
    blocks.append(
        (
            "p",
            f"Generated from the metering policy {policy.id!r} (version in force from "
            f"{version.effective_from.date().isoformat()}). The worked example below is computed by the "
            "same meter that bills, so this page cannot drift from the invoice.",
        )
    )
    blocks += [
        ("h2", f"What a billable {policy.unit} is"),
        (
            "ul",
            [
                f"A billable {policy.unit} is {unit_seconds} s of billable time; partial {policy.unit}s are "
                "billed as the rounding rules below say.",
                *about("What counts", "Who counts", "Meters", "Billed outcomes"),
            ],
        ),
        ("h2", "What is included"),
        ("ul", _included(p)),
        ("h2", "Rounding and minimums"),
        ("ul", about("Short calls", "Rounding", "Minimum", "Sessions left open")),
        ("h2", "Channels and participants"),
        (
            "ul",
            [
                *about("Channels"),
                "Participants: every participant, leg or connection is its own record and is billed on "
                "its own; a two-participant call bills both.",
            ],
        ),
    ]
    other = about("Segment", "Factor", "Multiplier", "Rule")
    if other:
        blocks += [("h2", "Other rules"), ("ul", other)]
    call = example_call(
        policy, EXAMPLE_ANSWERED, channels=EXAMPLE_CHANNELS, setup=EXAMPLE_SETUP, speech=EXAMPLE_SPEECH
    )
    metered = meter_records([call], policy)[0]
    silence = EXAMPLE_ANSWERED - EXAMPLE_SPEECH
    blocks += [
        ("h2", "Worked example"),
        (
            "p",
            f"A stereo call ({EXAMPLE_CHANNELS} channels): {text(EXAMPLE_SETUP)} s of ringing, then "
            f"{text(EXAMPLE_ANSWERED)} s answered, of which {text(EXAMPLE_SPEECH)} s is speech and "
            f"{text(silence)} s silence. The meter's steps:",
        ),
        ("ol", [f"{step.step}: {step.rule} -> {text(step.output_seconds)} s" for step in metered.explain]),
        (
            "p",
            f"Billable: {text(metered.billable_seconds)} s = {text(metered.billable_quantity)} "
            f"{policy.unit}(s), for {text(EXAMPLE_ANSWERED)} s answered on the caller's stopwatch.",
        ),
        ("pre", metered.trail()),
        ("h2", "Version history"),
        (
            "table",
            (
                ("in force from", "rule", "what changed"),
                [
                    (v.effective_from.date().isoformat(), one_line(v.params), v.note or "-")
                    for v in reversed(policy.versions)
                ],
            ),
        ),
    ]
    if policy.source:
        blocks += [("h2", "Sources"), ("ul", list(policy.source))]
    return blocks


def _included(p: MeteringParams) -> list[str]:
    lines = []
    for basis in p.bases:
        setup, silence = _INCLUDED[basis]
        lines.append(f"Setup and ringing time: {setup}.")
        lines.append(f"Silence: {silence}.")
    if len(p.bases) > 1:
        lines.insert(0, "The larger of several measures is billed; each is described below.")
    for segment in p.segments:
        lines.append(f"{segment.name} ({segment.field}): billed at x{text(segment.factor)}.")
    return lines


def _markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for kind, body in blocks:
        if kind == "h1":
            out += [f"# {body}", ""]
        elif kind == "h2":
            out += [f"## {body}", ""]
        elif kind == "p":
            out += [str(body), ""]
        elif kind in ("ul", "ol"):
            items = body if isinstance(body, list) else []
            marks = [f"{n}." if kind == "ol" else "-" for n in range(1, len(items) + 1)]
            out += [f"{mark} {item}" for mark, item in zip(marks, items, strict=True)] + [""]
        elif kind == "pre":
            out += ["```", str(body), "```", ""]
        elif kind == "table":
            header, rows = cast(_TableBody, body)
            out.append("| " + " | ".join(header) + " |")
            out.append("|" + "---|" * len(header))
            out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def _html(policy: Policy, blocks: list[Block]) -> str:
    from html import escape

    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(policy.name)}: metering methodology</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;line-height:1.5}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}"
        "pre{background:#f4f4f4;padding:.6rem;white-space:pre-wrap}</style>",
        "</head><body>",
    ]
    for kind, body in blocks:
        if kind in ("h1", "h2", "p", "pre"):
            out.append(f"<{kind}>{escape(str(body))}</{kind}>")
        elif kind in ("ul", "ol"):
            items = body if isinstance(body, list) else []
            out.append(f"<{kind}>" + "".join(f"<li>{escape(str(i))}</li>" for i in items) + f"</{kind}>")
        elif kind == "table":
            header, rows = cast(_TableBody, body)
            head = "".join(f"<th>{escape(h)}</th>" for h in header)
            cells = "".join(
                "<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"

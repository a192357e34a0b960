"""Policies in plain words: the one-line rule for listings, the methodology a provider should publish, and
the full page a transparent platform publishes (``methodology_page``: Markdown or HTML, with a worked example
metered by the reference meter).

Generated from the policy itself, so what it says cannot drift from what is billed.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import cast

from talktime.core.decimals import text
from talktime.core.metering.example import EXAMPLE_COUNTS, example_call
from talktime.core.metering.meter import count_label, meter_records
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


_COUNT_PLAIN = {
    "characters": "characters sent (characters), SSML markup included",
    "input_tokens": "input tokens (input_tokens: every input token, cached and audio included)",
    "output_tokens": "output tokens (output_tokens, audio output included)",
    "cached_input_tokens": "input tokens read from the prompt cache (cached_input_tokens)",
    "cache_write_tokens": "input tokens written to the prompt cache (cache_write_tokens)",
    "audio_input_tokens": "audio input tokens (audio_input_tokens)",
    "audio_output_tokens": "audio output tokens (audio_output_tokens)",
    "ssml_characters": "SSML markup characters (ssml_characters)",
    "cjk_characters": "CJK characters (cjk_characters)",
    "request": "one per request (each record)",
    "audio_seconds": "seconds of audio sent (audio_seconds)",
    "speech_seconds": "seconds of speech (speech_seconds)",
    "provider_reported_seconds": "seconds the provider reports (provider_reported_seconds)",
}


def _amount(value: Decimal, params: MeteringParams | None = None, symbol: str = "s") -> str:
    """A quantity in the base unit: ``60 s``, or ``1000 characters`` under a count policy."""
    if params is not None and params.is_count and symbol == "s":
        symbol = "units"
    return f"{text(value)} {symbol}"


def _seconds(value: Decimal) -> str:
    return f"{text(value)} s"


def _basis_short(params: MeteringParams) -> str:
    if params.is_count:
        return count_label(params.count_terms)
    basis = " | ".join(_BASIS_SHORT[b] for b in params.bases)
    return f"max({basis})" if len(params.bases) > 1 else basis


def one_line(params: MeteringParams, symbol: str = "s") -> str:
    """E.g. ``answered, 60/60 up, min 60 s, per record``; a count policy's amounts in its own unit."""
    parts = [_basis_short(params), params.rounding_label()]
    if params.minimum_seconds:
        parts.append(f"min {_amount(params.minimum_seconds, params, symbol)}")
    if params.free_below_seconds:
        parts.append(f"free under {_amount(params.free_below_seconds, params, symbol)}")
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


def policy_line(policy: Policy) -> str:
    """The version in force in one line; a policy with parts gives each part's own rule.

    E.g. ``input: input tokens - cached input tokens, exact, per record; output: ...``.
    """
    if not policy.parts:
        return one_line(policy.current.params, policy.symbol)
    return "; ".join(
        f"{component.part}: {one_line(component.current.params, policy.symbol)}"
        for component in policy.components()
    )


def methodology(policy: Policy) -> str:
    """The policy's methodology in plain words, newest version first, older versions listed after."""
    lines = [f"{policy.name} ({policy.id})", ""]
    if policy.description:
        lines += [policy.description.strip(), ""]
    modality = f" Modality: {policy.modality}." if policy.modality else ""
    lines.append(
        f"Billed unit: {policy.unit}.{modality} Confidence in the published rule: {policy.confidence or '-'}."
    )
    if policy.parts:
        lines.append(
            f"Each record is metered {len(policy.parts)} ways, each part on a meter of its own and priced on "
            "its own:"
        )
        for part, component in zip(policy.parts, policy.components(), strict=True):
            about = f": {part.description}" if part.description else ""
            lines.append(f"  - part {part.name!r} on meter {component.default_meter!r}{about}")
    lines.append("")
    for index, version in enumerate(reversed(policy.versions)):
        heading = "In force" if index == 0 else "Earlier"
        lines.append(
            f"{heading} from {version.effective_from.date().isoformat()}: {version.note}".rstrip(": ")
        )
        number = len(policy.versions) - 1 - index
        for name, component in _parts(policy):
            if name is not None:
                lines.append(f"  Part {name!r} (meter {component.default_meter!r}):")
            indent = "    - " if name is not None else "  - "
            lines += [f"{indent}{sentence}" for sentence in _sentences(component, component.versions[number])]
        lines.append("")
    if policy.source:
        lines.append("Sources:")
        lines += [f"  - {source}" for source in policy.source]
    return "\n".join(lines).rstrip() + "\n"


def _parts(policy: Policy) -> list[tuple[str | None, Policy]]:
    """(part name or None, the policy that meters it): the policy itself when it has no parts."""
    return [(component.part, component) for component in policy.components()]


def _count_sentence(p: MeteringParams) -> str:
    terms = p.count_terms
    if len(terms) == 1 and terms[0][1] == 1:
        return f"What counts: {_COUNT_PLAIN[terms[0][0]]}."
    pieces: list[str] = []
    for name, weight in terms:
        factor = "" if abs(weight) == 1 else f"{abs(weight)} x "
        sign = "minus " if weight < 0 else ("plus " if pieces else "")
        pieces.append(f"{sign}{factor}{_COUNT_PLAIN[name]}")
    return "What counts: " + ", ".join(pieces) + "."


def _sentences(policy: Policy, version: PolicyVersion) -> list[str]:
    p = version.params
    out: list[str] = []
    symbol = policy.symbol

    def _seconds(value: Decimal) -> str:
        return _amount(value, p, symbol)

    if p.is_count:
        out.append(_count_sentence(p))
    elif len(p.bases) == 1:
        out.append(f"What counts: {_BASIS_PLAIN[p.bases[0]]}.")
    else:
        options = "; ".join(_BASIS_PLAIN[b] for b in p.bases)
        out.append(f"What counts: the larger of {options}.")
    counted = "every kind of record" if p.kinds is None else "records of kind " + ", ".join(p.kinds)
    each = "request" if p.is_count else "leg, participant, connection"
    out.append(f"Who counts: {counted}; each record ({each}) is billed on its own.")
    if p.meters:
        split = ", ".join(f"{kind} on meter {name!r}" for kind, name in p.meters.items())
        out.append(f"Meters: {split}; everything else on {policy.default_meter!r}.")
    else:
        out.append(f"Meter: {policy.default_meter!r}.")
    out.append("Billed outcomes: " + ", ".join(p.billed_statuses) + "; any other outcome bills nothing.")
    if p.free_below_seconds:
        out.append(f"Short calls: under {_seconds(p.free_below_seconds)} of raw time bill nothing.")
    out.append(_rounding_sentence(p, _seconds))
    if p.minimum_seconds:
        out.append(f"Minimum: a billed {p.scope} of any length bills at least {_seconds(p.minimum_seconds)}.")
    if p.channels == "per_call":
        if not p.is_count:
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


def _rounding_sentence(p: MeteringParams, _seconds: Callable[[Decimal], str] = _seconds) -> str:
    where = {
        "record": "each record on its own, before anything is summed",
        "session": "each session's total (its records summed first)",
        "period": f"each customer's calendar-month total ({p.period_timezone})",
    }[p.scope]
    if p.rounding == "exact":
        what = "count" if p.is_count else "duration"
        return f"Rounding: none; billed to the exact {what}, applied to {where}."
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
    if policy.is_count:
        what_unit = f"A billable {policy.unit} is one {policy.unit} of what is counted below."
    else:
        what_unit = (
            f"A billable {policy.unit} is {unit_seconds} s of billable time; partial {policy.unit}s are "
            "billed as the rounding rules below say."
        )
    parts = [
        f"Part {part!r} is billed on meter {component.default_meter!r}."
        for part, component in _parts(policy)
        if part
    ]
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
            [what_unit, *parts, *about("What counts", "Who counts", "Meters", "Billed outcomes")],
        ),
        ("h2", "What is included"),
        ("ul", _included(p) if not p.is_count else ["Only what the count above names is billed."]),
        ("h2", "Rounding and minimums"),
        ("ul", about("Short calls", "Rounding", "Minimum", "Sessions left open")),
    ]
    if not policy.is_count:
        blocks += [
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
        policy,
        EXAMPLE_ANSWERED,
        channels=1 if policy.is_count else EXAMPLE_CHANNELS,
        setup=EXAMPLE_SETUP,
        speech=EXAMPLE_SPEECH,
    )
    every = meter_records([call], policy)  # one per part
    silence = EXAMPLE_ANSWERED - EXAMPLE_SPEECH
    symbol = policy.symbol
    if policy.is_count:
        intro = f"A request of {_example_counts(policy)}. The meter's steps:"
        stopwatch = "for the request above"
    else:
        intro = (
            f"A stereo call ({EXAMPLE_CHANNELS} channels): {text(EXAMPLE_SETUP)} s of ringing, then "
            f"{text(EXAMPLE_ANSWERED)} s answered, of which {text(EXAMPLE_SPEECH)} s is speech and "
            f"{text(silence)} s silence. The meter's steps:"
        )
        stopwatch = f"for {text(EXAMPLE_ANSWERED)} s answered on the caller's stopwatch"
    steps = [
        (f"{m.meter}, " if policy.parts else "")
        + f"{step.step}: {step.rule}{' ' if step.rule.endswith('=') else ' -> '}"
        + f"{text(step.output_seconds)} {symbol}"
        for m in every
        for step in m.explain
    ]
    billable = "; ".join(
        (f"{m.meter} " if policy.parts else "")
        + f"{text(m.billable_seconds)} {symbol} = {text(m.billable_quantity)} {policy.unit}(s)"
        for m in every
    )
    blocks += [
        ("h2", "Worked example"),
        ("p", intro),
        ("ol", steps),
        ("p", f"Billable: {billable}, {stopwatch}."),
        ("pre", "\n".join(m.trail() for m in every)),
        ("h2", "Version history"),
        (
            "table",
            (
                ("in force from", "rule", "what changed"),
                [
                    (v.effective_from.date().isoformat(), one_line(v.params, symbol), v.note or "-")
                    for v in reversed(policy.versions)
                ],
            ),
        ),
    ]
    if policy.source:
        blocks += [("h2", "Sources"), ("ul", list(policy.source))]
    return blocks


def _example_counts(policy: Policy) -> str:
    """The worked example's request, in the words of what the policy counts."""
    c = EXAMPLE_COUNTS
    if policy.unit == "token":
        return (
            f"{c['input_tokens']:,} input tokens ({c['cached_input_tokens']} of them from the prompt cache, "
            f"{c['audio_input_tokens']} of audio) and {c['output_tokens']} output tokens"
        )
    if policy.unit in ("character", "credit"):
        return (
            f"{c['characters']:,} characters ({c['ssml_characters']} of them SSML markup, "
            f"{c['cjk_characters']} CJK)"
        )
    return f"one request with {text(EXAMPLE_ANSWERED)} s of audio"


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


def _md(value: object) -> str:
    """Text as Markdown shows it: a tag named in prose (``<speak>``) must not be read as HTML."""
    return str(value).replace("<", "\\<")


def _markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for kind, body in blocks:
        if kind == "h1":
            out += [f"# {_md(body)}", ""]
        elif kind == "h2":
            out += [f"## {_md(body)}", ""]
        elif kind == "p":
            out += [_md(body), ""]
        elif kind in ("ul", "ol"):
            items = body if isinstance(body, list) else []
            marks = [f"{n}." if kind == "ol" else "-" for n in range(1, len(items) + 1)]
            out += [f"{mark} {_md(item)}" for mark, item in zip(marks, items, strict=True)] + [""]
        elif kind == "pre":
            out += ["```", str(body), "```", ""]
        elif kind == "table":
            header, rows = cast(_TableBody, body)
            out.append("| " + " | ".join(header) + " |")
            out.append("|" + "---|" * len(header))
            out += ["| " + " | ".join(_md(c).replace("|", "\\|") for c in row) + " |" for row in rows]
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

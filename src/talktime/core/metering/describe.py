"""Policies in plain words: the one-line rule for listings, and the methodology a provider should publish.

Generated from the policy itself, so what it says cannot drift from what is billed.
"""

from __future__ import annotations

from decimal import Decimal

from talktime.core.decimals import text
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

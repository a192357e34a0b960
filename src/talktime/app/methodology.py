"""What the built-in profiles are and how a policy bills, in words: ``talktime policies`` (the list),
``talktime policies show`` (the methodology) and ``talktime methodology`` (the published page)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from talktime.core.metering.describe import methodology, methodology_page, policy_line
from talktime.core.metering.policy import Policy
from talktime.providers import builtin, builtin_ids, load_policy


class PageFormat(StrEnum):
    md = "md"
    html = "html"


@dataclass(frozen=True, slots=True)
class Profile:
    """One built-in profile as the list shows it; ``-`` where the profile does not say."""

    id: str
    modality: str
    unit: str
    rule: str  # the current version's rule in one line (each part's, for a profile with several)
    effective_from: str  # YYYY-MM-DD of the current version
    source: str  # the first source's address
    confidence: str


def policy(value: str | Policy) -> Policy:
    """A policy object, or the built-in profile id or TOML file a user named."""
    return value if isinstance(value, Policy) else load_policy(value)


def profiles() -> list[Profile]:
    """Every built-in profile, in id order."""
    found = []
    for policy_id in builtin_ids():
        p = builtin(policy_id)
        found.append(
            Profile(
                p.id,
                p.modality or "-",
                p.unit,
                policy_line(p),
                p.current.effective_from.date().isoformat(),
                p.source[0].split(" ")[0] if p.source else "-",
                p.confidence or "-",
            )
        )
    return found


def describe(value: str | Policy) -> str:
    """A policy's methodology in plain words, version by version."""
    return methodology(policy(value))


def page(value: str | Policy, format: PageFormat = PageFormat.md) -> str:
    """The published methodology page, with a worked example the meter computes (Markdown or HTML)."""
    return methodology_page(policy(value), format.value)

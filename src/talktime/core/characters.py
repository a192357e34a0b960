"""Counting a TTS request's characters the way providers bill them, from the text itself.

Owns: the three character counts a record carries (``characters``, ``cjk_characters``,
``ssml_characters``) computed from the text sent, so a capture that sees the text fills them the same way
every time. Does not own: which of them a provider bills (the policy's basis says, e.g. Azure's
``characters + cjk_characters - ssml_characters``) or keeping the text (it is never stored).

Written by hand: it is a dozen lines over the standard library (``unicodedata`` for what a Han ideograph is,
``re`` for the tags), and no maintained package counts characters by a TTS provider's billing rules.

>>> counts = count_characters("<speak><voice name='x'>你好, world</voice></speak>")
>>> counts.characters, counts.cjk_characters, counts.ssml_characters
(48, 2, 39)
>>> counts.characters + counts.cjk_characters - counts.ssml_characters  # what Azure bills
11
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

#: The SSML envelope Azure does not bill; other markup (prosody, phoneme, break) is billed as characters.
FREE_TAGS: Final = ("speak", "voice")


@dataclass(frozen=True, slots=True)
class CharacterCounts:
    """Every code point sent, the Han ideographs among them, and the characters of the free tags."""

    characters: int
    cjk_characters: int
    ssml_characters: int

    def as_fields(self) -> dict[str, int]:
        """The record fields these counts fill."""
        return {
            "characters": self.characters,
            "cjk_characters": self.cjk_characters,
            "ssml_characters": self.ssml_characters,
        }


def is_han(character: str) -> bool:
    """True for a Han ideograph (Chinese characters, Japanese kanji, Korean hanja); kana and hangul are not.

    >>> [is_han(c) for c in "漢かな한A"]
    [True, False, False, False, False]
    """
    return unicodedata.name(character, "").startswith(
        ("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH")
    )


def _tags(names: Iterable[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(name) for name in names)
    return re.compile(rf"</?(?:{alternatives})(?:\s[^<>]*)?/?>", re.IGNORECASE)


def count_characters(text: str, free_tags: Iterable[str] = FREE_TAGS) -> CharacterCounts:
    """The counts of ``text`` as sent: code points, Han ideographs, and the characters of ``free_tags``."""
    free = sum(len(match.group(0)) for match in _tags(free_tags).finditer(text))
    return CharacterCounts(
        characters=len(text),
        cjk_characters=sum(1 for character in text if is_han(character)),
        ssml_characters=free,
    )

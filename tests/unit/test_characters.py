"""Character counts from the text sent: what Azure bills follows from them (Han ideographs twice, the
<speak> and <voice> envelope free, other markup billed)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from talktime.core.characters import count_characters
from talktime.core.metering.meter import meter_records
from talktime.core.records import parse_record
from talktime.providers import builtin


@pytest.mark.parametrize(
    ("text", "characters", "cjk", "ssml", "why"),
    [
        ("Hello, world", 12, 0, 0, "plain text: every code point, spaces and punctuation included"),
        ("東京タワー", 5, 2, 0, "kanji count as Han ideographs, katakana does not"),
        ("안녕 漢字", 5, 2, 0, "hangul is not Han; hanja is"),
        ("<speak>hi</speak>", 17, 0, 15, "the speak envelope is markup Azure does not bill"),
        (
            '<SPEAK version="1.0"><voice name="en-US-Ava">ok</voice></SPEAK>',
            63,
            0,
            61,
            "tags in any case, attributes included",
        ),
        ("<speak>a<break time='1s'/>b</speak>", 35, 0, 15, "a break tag is billed, so it is not in ssml"),
        ("<speaker>x</speaker>", 20, 0, 0, "a tag that only starts like speak is not the envelope"),
    ],
)
def test_counts(text: str, characters: int, cjk: int, ssml: int, why: str) -> None:
    counts = count_characters(text)
    assert (counts.characters, counts.cjk_characters, counts.ssml_characters) == (characters, cjk, ssml), why


def test_azure_bills_what_the_counts_say() -> None:
    text = "<speak><voice name='zh-CN-Xiaoxiao'>你好，世界</voice></speak>"
    fields = {k: str(v) for k, v in count_characters(text).as_fields().items()}
    record = parse_record(
        {
            "id": "t1",
            "kind": "tts",
            "started_at": "2026-10-01T00:00:00Z",
            "ended_at": "2026-10-01T00:00:01Z",
            **fields,
        }
    )
    metered = meter_records([record], builtin("azure-tts"))[0]
    # 5 characters spoken, 4 of them Han (counted twice); the envelope is free
    assert metered.billable_seconds == Decimal(9)

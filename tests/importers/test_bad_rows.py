"""Every check an importer makes stops the import and names the row: one bad row per check, and many.

Rows are checked column-wise in one pass; the message naming file, line, field and why must still come out
for each kind of bad value, and a file with more bad rows than are shown says how many more there are.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from talktime.errors import StatementError
from talktime.importers import read_statement

HEADER = "sid,parent_call_sid,status,direction,start_time,end_time,duration,price,price_unit\n"
START = '"Tue, 14 Oct 2026 09:00:05 +0000"'
END = '"Tue, 14 Oct 2026 09:01:25 +0000"'
GOOD = f"CA1,,completed,outbound-api,{START},{END},80,-0.01700,USD\n"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (f"CA2,,ringing,outbound-api,{START},,,,USD", "field 'status': 'ringing' is not a finished status"),
        ("CA2,,completed,outbound-api,,,80,,USD", "field 'start_time': '' is required"),
        ("CA2,,completed,outbound-api,2026-10-14 09:00:05,,80,,USD", "field 'start_time': '2026-10-14"),
        (f"CA2,,completed,outbound-api,{START},yesterday,80,,USD", "field 'end_time': 'yesterday' is not"),
        (
            f'CA2,,completed,outbound-api,{END},"Tue, 14 Oct 2026 08:00:00 +0000",80,,USD',
            "field 'end_time': 'Tue, 14 Oct 2026 08:00:00 +0000' is before the start time",
        ),
        (f"CA2,,completed,outbound-api,{START},,8.1234567,,USD", "field 'duration': '8.1234567' is not a"),
        (f"CA2,,completed,outbound-api,{START},,-3,,USD", "field 'duration': '-3' is not a non-negative"),
        (f"CA2,,completed,outbound-api,{START},,,,USD", "field 'duration': '' is required (or an end time)"),
        (
            f"CA2,,completed,outbound-api,{START},,80,free,USD",
            "field 'price': 'free' is not a decimal amount",
        ),
    ],
)
def test_each_check_names_the_row(tmp_path: Path, row: str, expected: str) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(HEADER + GOOD + row + "\n" + GOOD)
    with pytest.raises(StatementError) as caught:
        read_statement(path)
    assert str(caught.value).count(": field ") == 1
    assert f"calls.csv line 3: {expected}" in str(caught.value)


def test_billed_and_channels_checks_name_the_row(tmp_path: Path) -> None:
    mapping = tmp_path / "map.toml"
    mapping.write_text(
        '[columns]\nid = "id"\nstart = "start"\nduration = "seconds"\nquantity = "billed"\n'
        'channels = "channels"\n[units]\nduration = "second"\nquantity = "second"\n'
    )
    path = tmp_path / "usage.csv"
    path.write_text(
        "id,start,seconds,billed,channels\n"
        "a,2026-10-14T09:00:00+00:00,10,10,1\n"
        "b,2026-10-14T09:00:00+00:00,10,ten,1\n"
        "c,2026-10-14T09:00:00+00:00,10,10,0\n"
        "d,2026-10-14T09:00:00+00:00,10,10,two\n"
    )
    with pytest.raises(StatementError) as caught:
        read_statement(path, mapping=mapping)
    message = str(caught.value)
    assert "line 3: field 'billed': 'ten' is not a non-negative decimal" in message
    assert "line 4: field 'channels': '0' is not a positive whole number" in message
    assert "line 5: field 'channels': 'two' is not a positive whole number" in message


def test_many_bad_rows_show_fifty_and_count_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    bad = [f"CA{n},,ringing,outbound-api,{START},,,,USD\n" for n in range(57)]
    path.write_text(HEADER + GOOD + "".join(bad) + GOOD)
    with pytest.raises(StatementError) as caught:
        read_statement(path)
    problems = caught.value.problems
    assert len(problems) == 51 and all("is not a finished status" in p for p in problems[:50])
    assert "line 3: field 'status'" in problems[0] and "line 52: field 'status'" in problems[49]
    assert problems[50] == "7 more bad rows not shown"


def test_a_duration_of_years_reads_exactly_and_one_past_64_bits_names_the_row(tmp_path: Path) -> None:
    """A call "ending" in 2035 (283,996,794 s) is a line like any other, to the microsecond (reconcile then
    flags it); a duration past 64-bit microseconds is a bad row, never a database traceback."""
    path = tmp_path / "calls.csv"
    path.write_text(HEADER + GOOD + f"CA2,,completed,outbound-api,{START},,283996794.5,,USD\n")
    lines = read_statement(path)
    assert lines.column("duration_us").to_pylist() == [80_000_000, 283_996_794_500_000]
    path.write_text(HEADER + GOOD + f"CA3,,completed,outbound-api,{START},,{'9' * 23},,USD\n")
    with pytest.raises(StatementError, match=r"calls.csv line 3: field 'duration': '9{23}' is not a non-neg"):
        read_statement(path)

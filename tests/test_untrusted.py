"""The gate for text from outside, over any text at all (surrogates included): nothing that could steer a
terminal comes out raw, text without such characters comes out as it went in, JSON keeps the exact text,
and no CSV text cell starts a formula. The characters judged are listed in tests/hostile.py."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from tests.hostile import FORBIDDEN
from tui.untrusted import csv_cell, json_line, json_text, visible

LINE_BREAKS = {"\n", "\u2028", "\u2029"}
MARKS = {"\u061c", "\u200e", "\u200f"}  # bidirectional marks: invisible, and they reorder what is read
NEVER_RAW = FORBIDDEN | LINE_BREAKS | MARKS
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
# Every code point, lone surrogates too; the few that matter drawn often (a uniform draw would rarely hit one)
ANY_CHAR = st.one_of(
    st.characters(exclude_categories=()), st.sampled_from(sorted(NEVER_RAW)), SURROGATES, st.sampled_from("=+-@'\\")
)
ANY_TEXT = st.text(ANY_CHAR, max_size=40)


def _raw(text: str) -> set[str]:
    return {c for c in text if c in NEVER_RAW or 0xD800 <= ord(c) <= 0xDFFF}


@given(ANY_TEXT)
def test_nothing_that_steers_a_terminal_comes_out_raw(text: str) -> None:
    shown = visible(text)
    assert not _raw(shown)
    shown.encode("utf-8")  # always printable: a lone surrogate would raise here


@given(st.text(st.characters(exclude_characters="".join(NEVER_RAW), exclude_categories=("Cs",)), max_size=40))
def test_ordinary_text_is_left_as_it_is(text: str) -> None:
    assert visible(text) == text


@given(st.sampled_from(sorted(NEVER_RAW)) | SURROGATES)
def test_each_character_is_shown_by_its_code(char: str) -> None:
    shown = visible(f"a{char}b")
    assert shown.startswith("a\\") and shown.endswith("b")
    code = int(shown[3:-1], 16) if shown[2] in "xu" else {"n": 10, "t": 9, "r": 13}[shown[2]]
    assert code == ord(char)


_JSON = st.recursive(
    st.none() | st.booleans() | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=12,
)


@given(_JSON, st.booleans(), st.sampled_from([None, 1]))
def test_json_keeps_the_exact_text_with_nothing_raw(value: object, ascii_only: bool, indent: int | None) -> None:
    text = json_text(value, indent=indent, ensure_ascii=ascii_only)
    assert json.loads(text) == value
    assert not {c for c in text if c != "\n"} & NEVER_RAW, "only the indent's own line breaks"
    text.encode("utf-8")


@given(_JSON)
def test_a_valid_json_line_passed_on_means_the_same(value: object) -> None:
    line = json.dumps(value, ensure_ascii=False)
    safe = json_line(line)
    assert json.loads(safe) == value
    assert not _raw(safe)


@given(ANY_TEXT)
def test_no_csv_text_cell_starts_a_formula(text: str) -> None:
    cell = csv_cell(text)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert not _raw(cell)
    assert cell in (visible(text), "'" + visible(text))


@given(SURROGATES)
def test_a_lone_surrogate_is_shown_not_raised(char: str) -> None:
    assert visible(char) == f"\\u{ord(char):04x}"


def _replaced(value: object) -> object:
    """`value` as a reader of text sees it: two halves of a pair side by side are one character, and half a
    pair alone is U+FFFD (UTF-16's own decoder decides, not the code under test)."""
    if isinstance(value, str):
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if isinstance(value, list):
        return [_replaced(v) for v in value]
    if isinstance(value, dict):
        return {_replaced(k): _replaced(v) for k, v in value.items()}
    return value


@given(_JSON, st.booleans())
def test_what_a_venue_sends_is_read_as_text(value: object, as_bytes: bool) -> None:
    """A venue's JSON escapes may name half a surrogate pair: read as U+FFFD, so every string can be printed,
    stored and sent; every other character comes through exactly."""
    from tui.money import loads

    raw = json.dumps(value)  # escapes every non-ASCII character, lone surrogates included
    decoded = loads(raw.encode() if as_bytes else raw)
    assert decoded == _replaced(value)
    json.dumps(decoded, ensure_ascii=False).encode("utf-8")

"""The one gate for text from outside: what a venue, a server, a config, the history or a command supplies
is shown, never obeyed, before it reaches a terminal or a file a person opens.

Control characters (C0, DEL, C1), and so every escape sequence, bidirectional overrides, isolates and
marks, line and paragraph separators, and lone surrogates (which cannot even be encoded) are written as
visible escapes: ``\\x1b``, ``\\n``, ``\\u202e``. A sequence that would move the cursor, clear the
screen or retitle the terminal is then a few harmless characters; reordered text reads in order.
JSON keeps the exact text, with the same characters as JSON escapes; CSV text cells a spreadsheet would
run as a formula get a leading ``'``. Amounts are never passed through here: they are digits by the time
they are printed.
"""

from __future__ import annotations

import json
import re
from typing import Any

_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # marks, embeddings, overrides, isolates
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}\u2028\u2029\ud800-\udfff]")
# In JSON text, C0 characters are already escaped by `json.dumps` (strings cannot hold them raw)
_JSON_UNSAFE = re.compile(f"[\x7f-\x9f{_BIDI}\u2028\u2029\ud800-\udfff]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _shown(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


def visible(text: object) -> str:
    """`text` as it may be shown: every character that could steer a terminal or reorder what is read,
    written as a visible escape. Text without any is returned as it is (the common case costs one scan)."""
    text = text if isinstance(text, str) else str(text)
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_shown, text)


def csv_cell(text: object) -> str:
    """A text cell of a CSV file: visible, and inert in a spreadsheet (a leading `'` where it would start a
    formula). Never for amounts: a negative amount stays a number."""
    shown = visible(text if isinstance(text, str) else str(text))  # a leading tab or CR is shown as the text \t, \r
    return "'" + shown if shown.startswith(FORMULA_STARTS) else shown


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_text(value: Any, *, indent: int | None = None, ensure_ascii: bool = False) -> str:
    """`json.dumps`, with every character `visible` would escape written as a JSON escape: the same data
    for any JSON reader, nothing raw for a person reading it in a terminal."""
    text = json.dumps(value, indent=indent, ensure_ascii=ensure_ascii)
    return text if _JSON_UNSAFE.search(text) is None else _JSON_UNSAFE.sub(_json_escape, text)


def json_line(line: str) -> str:
    """A line that is valid JSON (checked by the caller), made safe the way `json_text` makes its output:
    raw characters of this kind can only stand inside its strings, where their JSON escape means the same."""
    return line if _JSON_UNSAFE.search(line) is None else _JSON_UNSAFE.sub(_json_escape, line)

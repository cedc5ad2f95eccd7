"""A small terminal emulator for tests: the screen a stream of terminal output leaves, as lines of text.

It knows what a Textual app writes (cursor positioning, erasing, styles, modes) and nothing more: styles and
modes are read and dropped, text lands where the cursor is. Enough to read a browser session's terminal
(textual-serve feeds the page the app's raw output) as a grid of rows and columns, where columns line up."""

from __future__ import annotations

import re
import unicodedata

SEQUENCE = re.compile(
    r"\x1b\[(?P<params>[0-9;?<=>]*)[ -/]*(?P<final>[@-~])"  # CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC, ended by BEL or ST
    r"|\x1bP[^\x1b]*\x1b\\"  # DCS
    r"|\x1b[()][0-9A-Za-z]|\x1b[=>78DEMc]"  # charsets, keypad modes, save/restore, index
)


class Screen:
    def __init__(self, cols: int, rows: int) -> None:
        self.cols, self.rows = cols, rows
        self.grid = [[" "] * cols for _ in range(rows)]
        self.x = self.y = 0

    def feed(self, text: str) -> None:
        at = 0
        for match in SEQUENCE.finditer(text):
            self._text(text[at : match.start()])
            if match.group("final"):
                self._csi(match.group("params"), match.group("final"))
            at = match.end()
        self._text(text[at:])

    def lines(self) -> list[str]:
        return ["".join(row).rstrip() for row in self.grid]

    def _text(self, text: str) -> None:
        for char in text:
            if char == "\r":
                self.x = 0
            elif char == "\n":
                self.y = min(self.y + 1, self.rows - 1)
            elif char == "\b":
                self.x = max(0, self.x - 1)
            elif char < " " or char == "\x7f" or unicodedata.combining(char):
                continue
            else:
                if self.x < self.cols and self.y < self.rows:
                    self.grid[self.y][self.x] = char
                self.x += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1

    def _csi(self, params: str, final: str) -> None:
        if params.startswith(("?", "<", "=", ">")):
            return  # private modes: nothing on the screen
        numbers = [int(p) if p else 0 for p in params.split(";")] if params else []

        def arg(i: int, default: int = 1) -> int:
            return numbers[i] if len(numbers) > i and numbers[i] else default

        if final in "Hf":
            self.y, self.x = min(arg(0) - 1, self.rows - 1), min(arg(1) - 1, self.cols - 1)
        elif final == "A":
            self.y = max(0, self.y - arg(0))
        elif final == "B":
            self.y = min(self.rows - 1, self.y + arg(0))
        elif final == "C":
            self.x = min(self.cols - 1, self.x + arg(0))
        elif final == "D":
            self.x = max(0, self.x - arg(0))
        elif final == "G":
            self.x = min(arg(0) - 1, self.cols - 1)
        elif final == "d":
            self.y = min(arg(0) - 1, self.rows - 1)
        elif final == "K":
            mode = arg(0, 0)
            start, end = (self.x, self.cols) if mode == 0 else (0, self.x + 1) if mode == 1 else (0, self.cols)
            self.grid[self.y][start:end] = [" "] * (end - start)
        elif final == "J":
            mode = arg(0, 0)
            if mode == 2 or mode == 3:
                self.grid = [[" "] * self.cols for _ in range(self.rows)]
            elif mode == 0:
                self.grid[self.y][self.x :] = [" "] * (self.cols - self.x)
                for row in range(self.y + 1, self.rows):
                    self.grid[row] = [" "] * self.cols

"""The idle floor: a bare Textual app that updates one label every second, nothing else. What any live
Textual monitor costs at the least on this machine; bench/idle.py runs it beside ours."""

from __future__ import annotations

import time

from textual.app import App, ComposeResult
from textual.widgets import Label


class Floor(App[None]):
    def compose(self) -> ComposeResult:
        yield Label(id="clock")

    def on_mount(self) -> None:
        self.set_interval(1.0, self.tick)

    def tick(self) -> None:
        self.query_one("#clock", Label).update(time.strftime("%H:%M:%S"))


if __name__ == "__main__":
    Floor().run()

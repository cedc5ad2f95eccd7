"""The key's queue (README: "Someone waiting comes first: a `--once` (or a drill-down) goes before the pollers'
next calls"; among equals, first come first served), read through two ledgers on one key file, as two
processes see it: whose turn it is, at each step, by the queue alone."""

from __future__ import annotations

from pathlib import Path

from tui.venues.ledger import KeyLedger


async def _first(ledger: KeyLedger, ticket: str) -> bool:
    await ledger.hold(patience=10)
    try:
        return ledger.first_in_line(ticket, ledger.read())
    finally:
        ledger.release()


async def test_a_one_shot_goes_before_the_pollers_and_equals_go_in_the_order_they_came(tmp_path: Path) -> None:
    serve, once = KeyLedger(tmp_path / "key"), KeyLedger(tmp_path / "key")  # two processes' views of one key
    first_poll = await serve.enqueue(urgent=False)
    second_poll = await serve.enqueue(urgent=False)
    first_once = await once.enqueue(urgent=True)  # queued last, waited for by someone
    second_once = await once.enqueue(urgent=True)
    turns = {
        "first --once": await _first(once, first_once),
        "second --once": await _first(once, second_once),
        "first poll": await _first(serve, first_poll),
        "second poll": await _first(serve, second_poll),
    }
    assert turns == {"first --once": True, "second --once": False, "first poll": False, "second poll": False}
    for done, whose in ((first_once, "second --once"), (second_once, "first poll"), (first_poll, "second poll")):
        await once.dequeue(done)
        assert await _first(
            once if "once" in whose else serve,
            {"second --once": second_once, "first poll": first_poll, "second poll": second_poll}[whose],
        ), f"{whose}'s turn once the one before it is done"
    await serve.dequeue(second_poll)
    assert once.read().get("queue") == []

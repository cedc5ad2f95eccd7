"""A hostile venue: the simulator with names, assets, labels and error texts that try to steer the terminal.

Each hostile text carries escape sequences (retitle the terminal, clear the screen, move the cursor and paint
a figure), a bidirectional override, a C1 control, a line break, and Textual markup with an action. What the
tests look for is decided here, independently of the code under test: the characters no output may carry
raw (`FORBIDDEN`), and the raw pieces of the hostile texts that must never reach a terminal (`RAW`).
"""

from __future__ import annotations

from decimal import Decimal

from tui.sim import Simulator

TITLE = "\x1b]0;PWNED\x07"  # set the terminal's title
CLEAR = "\x1b[2J"  # clear the screen
PAINT = "\x1b[3;3H9,999,999.99"  # move the cursor and paint a figure the venue never sent
BIDI = "\u202eDLOH"  # right-to-left override: "HOLD" read backwards
C1 = "\x9b31m"  # CSI as one C1 character
MARKUP = "[@click=app.quit]click[/] [bold]loud[/bold]"
HOSTILE = f"Vault{TITLE}{CLEAR}{PAINT}{BIDI}{C1}\nsecond line {MARKUP}"
ASSET = f"=HYPERLINK(1){TITLE}"  # a spreadsheet formula too
ERROR = f"EGeneral:Internal error{CLEAR}{TITLE}{BIDI} {MARKUP}"

# None may reach a terminal or a file a person opens. The retitling is looked for without its BEL: Rich drops
# a BEL, and an OSC sequence left without its end swallows what follows until one comes.
RAW = ("\x1b]0;PWNED", CLEAR, "\x1b[3;3H", "\u202e", "\x9b")
SHOWN = "\\x1b]0;PWNED\\x07"  # how the retitling sequence reads once made visible
FORBIDDEN = (
    {chr(c) for c in range(0x20) if chr(c) != "\n"}
    | {chr(0x7F)}
    | {chr(c) for c in range(0x80, 0xA0)}
    | {chr(c) for c in range(0x202A, 0x202F)}
    | {chr(c) for c in range(0x2066, 0x206A)}
)


def forbidden_in(text: str) -> list[str]:
    """The forbidden characters `text` holds (line breaks of our own output are allowed)."""
    return sorted({char for char in text if char in FORBIDDEN})


def make_hostile(sim: Simulator) -> tuple[str, str]:
    """Names every vault and portfolio hostile, adds a hostile asset to one of each, and gives INTX's BTC a
    hostile asset id (a label that a drill-down can fetch, since its name is a valid one): returns
    (the Kraken vault id, the INTX portfolio id) that hold it."""
    market = sim.market
    with market.lock:
        for vault in market.vaults.values():
            vault.name = HOSTILE
        for portfolio in market.portfolios.values():
            portfolio.name = HOSTILE
    vault = next(iter(market.vaults))
    portfolio = next(iter(market.portfolios))
    market.set_kraken(vault, ASSET, Decimal("-1.50"), Decimal("0"))
    market.set_intx(portfolio, ASSET, quantity=Decimal("2.5"), hold=Decimal("0"), loan=Decimal("0"))
    with market.lock:  # INTX labels every balance with ids of its own: BTC's is hostile everywhere
        market.asset_ids["BTC"] = (f"id{TITLE}{BIDI}", market.asset_ids["BTC"][1])
    return vault, portfolio

"""Config and credentials: every problem named by file, key and line; secrets kept private."""

from __future__ import annotations

import os
import stat
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import run_cli, write_config
from tui.config import ConfigError, load, parse, resolve_path, template
from tui.credentials import CredentialError, Secret, SecretSource, load_secret, redact

GOOD = """\
refresh_seconds = 5

[[venue]]
kind = "kraken-custody"
api_key = { env = "K_KEY" }
api_secret = { env = "K_SECRET" }
vaults = ["VN2F7NJJWKJHI2"]

[[venue]]
kind = "coinbase-intx"
name = "INTX main"
api_key = { env = "I_KEY" }
api_secret = { file = "intx.secret" }
passphrase = { command = "echo pass" }
"""


def test_a_venues_columns_are_its_amount_fields_in_the_order_given() -> None:
    config = parse(GOOD.replace('name = "INTX main"', 'name = "INTX main"\ncolumns = ["loan", "usd_value", "loan"]'))
    assert config.venues[1].columns == ("loan", "usd_value") and config.venues[0].columns is None


def test_a_good_config_loads() -> None:
    config = parse(GOOD)
    assert config.refresh_seconds == 5
    kraken, intx = config.venues
    assert kraken.name == "Kraken custody" and kraken.base_url == "https://api.kraken.com"
    assert kraken.accounts == ("VN2F7NJJWKJHI2",)
    assert intx.name == "INTX main" and intx.secrets["passphrase"] == SecretSource("command", "echo pass")


@pytest.mark.parametrize(
    ("edit", "key", "line", "words"),
    [
        (("refresh_seconds = 5", "refresh_secs = 5"), "refresh_secs", 1, "unknown key"),
        (('vaults = ["VN2F7NJJWKJHI2"]', 'vault = ["VN2F7NJJWKJHI2"]'), "venue[1].vault", 7, "unknown key"),
        (('kind = "coinbase-intx"', 'kind = "coinbase"'), "venue[2].kind", 10, "must be one of"),
        (('vaults = ["VN2F7NJJWKJHI2"]', 'vaults = ["VN2F7"]'), "venue[1].vaults", 7, "not a vault id"),
        (
            ('name = "INTX main"', 'name = "INTX main"\nportfolios = ["../summary"]'),
            "venue[2].portfolios",
            12,
            "not a portfolio id (the portfolio_id INTX shows, such as 9mnk39ap-5-23, or its UUID)",
        ),
        (('passphrase = { command = "echo pass" }', ""), "venue[2].passphrase", 9, "missing"),
        (
            ('name = "INTX main"', 'name = "INTX main"\nbase_url = "http://example.com"'),
            "venue[2].base_url",
            12,
            "unencrypted",
        ),
        (("refresh_seconds = 5", "refresh_seconds = 0.1"), "refresh_seconds", 1, "between"),
        (('api_key = { env = "I_KEY" }', "api_key = { vault = 1 }"), "venue[2].api_key", 12, "must be"),
        (
            ('vaults = ["VN2F7NJJWKJHI2"]', 'vaults = ["VN2F7NJJWKJHI2"]\ncolumns = ["balance", "loan"]'),
            "venue[1].columns",
            8,
            "unknown column 'loan' for a kraken-custody venue (known: balance, hold_trade, available, usd_value",
        ),
        (('name = "INTX main"', 'name = "INTX main"\ncolumns = []'), "venue[2].columns", 12, "non-empty list"),
    ],
)
def test_each_problem_names_file_key_and_line(edit: tuple[str, str], key: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(GOOD.replace(*edit), Path("/etc/bt.toml"))
    message = str(caught.value)
    assert message.startswith(f"/etc/bt.toml:{line}: {key}: "), message
    assert words in message
    assert "\n" not in message


def test_toml_syntax_error_names_the_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(GOOD.replace('name = "INTX main"', "name = INTX main"), Path("c.toml"))
    assert str(caught.value).startswith("c.toml:11: invalid TOML")


def test_loopback_http_is_allowed_and_other_hosts_are_not() -> None:
    for url in ("http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9"):
        assert parse(GOOD.replace('name = "INTX main"', f'base_url = "{url}"')).venues[1].base_url == url
    for url in ("http://10.0.0.5", "http://api.kraken.com", "ftp://x"):
        with pytest.raises(ConfigError):
            parse(GOOD.replace('name = "INTX main"', f'base_url = "{url}"'))


def test_literal_secret_needs_a_private_file(tmp_path: Path) -> None:
    text = GOOD.replace('api_key = { env = "K_KEY" }', 'api_key = "literal-key-123"')
    path = write_config(tmp_path / "c.toml", text, 0o644)
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert "chmod 600" in str(caught.value) and ":5: venue[1].api_key" in str(caught.value)
    assert "literal-key-123" not in str(caught.value)
    path.chmod(0o600)
    assert load(path).venues[0].secrets["api_key"].kind == "literal"


def test_secret_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BT_SECRET", "from-env-value")
    assert load_secret(SecretSource("env", "BT_SECRET")).reveal() == "from-env-value"
    with pytest.raises(CredentialError, match="BT_NOPE is not set"):
        load_secret(SecretSource("env", "BT_NOPE"))
    secret_file = write_config(tmp_path / "s", "from-file-value\n", 0o600)
    assert load_secret(SecretSource("file", "s"), config_path=tmp_path / "c.toml").reveal() == "from-file-value"
    secret_file.chmod(0o640)
    with pytest.raises(CredentialError, match="readable by group or others"):
        load_secret(SecretSource("file", str(secret_file)))
    assert load_secret(SecretSource("command", "printf from-command-value")).reveal() == "from-command-value"
    with pytest.raises(CredentialError) as caught:
        load_secret(SecretSource("command", "sh -c 'echo leaked-output; exit 3'"))
    assert "exit status 3" in str(caught.value) and "leaked-output" not in str(caught.value)


def test_secrets_never_show_and_are_redacted() -> None:
    secret = Secret("canary-value-9f8e7d")
    assert "canary" not in repr(secret) and "canary" not in str(secret) and "canary" not in f"{secret}"
    assert redact("the venue echoed canary-value-9f8e7d back") == "the venue echoed *** back"


def test_config_path_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BALANCE_TUI_CONFIG", "/from/env.toml")
    assert resolve_path("/explicit.toml") == Path("/explicit.toml")
    assert resolve_path(None) == Path("/from/env.toml")
    monkeypatch.delenv("BALANCE_TUI_CONFIG")
    assert resolve_path(None).name == "config.toml" and "balance-tui" in str(resolve_path(None))


def test_template_is_valid_and_commented() -> None:
    config = parse(template())
    assert [v.kind.kind for v in config.venues] == ["kraken-custody", "coinbase-intx"]
    assert all(s.kind == "env" for v in config.venues for s in v.secrets.values())
    assert template().count("#") >= 8


def test_config_init_writes_0600_and_never_overwrites_without_force(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "config.toml"
    done = run_cli("config", "init", "--config", str(path))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    path.write_text("# mine\n")
    again = run_cli("config", "init", "--config", str(path))
    assert again.returncode == 2 and "--force" in again.stderr and path.read_text() == "# mine\n"
    assert run_cli("config", "init", "--force", "--config", str(path)).returncode == 0
    assert "kraken-custody" in path.read_text()
    assert run_cli("config", "path", "--config", str(path)).stdout.strip() == str(path)


def test_the_same_kraken_key_twice_is_refused(tmp_path: Path) -> None:
    text = GOOD + GOOD.split("\n\n")[1].replace('vaults = ["VN2F7NJJWKJHI2"]', 'name = "Second"')
    path = write_config(tmp_path / "c.toml", text)
    write_config(tmp_path / "intx.secret", "c2VjcmV0")
    done = run_cli("--once", "--config", str(path), env={"K_KEY": "k", "K_SECRET": "c2VjcmV0", "I_KEY": "i"})
    assert done.returncode == 2
    assert "same Kraken key" in done.stderr and "Traceback" not in done.stderr


def test_missing_config_file_says_what_to_do(tmp_path: Path) -> None:
    done = run_cli("--once", "--config", str(tmp_path / "none.toml"))
    assert done.returncode == 2
    assert "config init" in done.stderr and done.stderr.count("\n") == 1


RULE = """
[[alert]]
venue = "INTX main"
asset = "USDC"
field = "max_withdraw_amount"
below = "10000.50"
"""


def test_alerts_assets_and_history_load() -> None:
    config = parse(GOOD + '\n[assets]\n"XBT.M" = "BTC"\n\n[history]\nenabled = false\n' + RULE)
    (rule,) = config.alerts
    assert rule.kind == "below" and rule.threshold == Decimal("10000.50") and rule.venue == "INTX main"
    assert config.assets == {"XBT.M": "BTC"} and config.history.enabled is False
    change = parse(GOOD + RULE.replace('below = "10000.50"', 'change = "2.5%"\nwindow = "15m"')).alerts[0]
    assert change.percent and change.threshold == Decimal("2.5") and change.window == 900.0
    wide = '"-123456789012345678901234.5678901"'  # 31 digits: a change either way, kept to the last digit
    exact = parse(GOOD + RULE.replace('below = "10000.50"', f"change = {wide}")).alerts[0]
    assert str(exact.threshold) == "123456789012345678901234.5678901"


@pytest.mark.parametrize(
    ("edit", "key", "anchor", "words"),
    [
        (('field = "max_withdraw_amount"', 'field = "max_withdraw"'), "alert[1].field", "field =", "not a field"),
        (('venue = "INTX main"', 'venue = "Binance"'), "alert[1].venue", 'venue = "B', "no venue is named"),
        (('below = "10000.50"', 'below = "lots"'), "alert[1].below", "below =", "must be a number"),
        (('below = "10000.50"', 'below = "1e999999"'), "alert[1].below", "below =", "below 10^60"),
        (('below = "10000.50"', f'change = "{"1" * 301}%"'), "alert[1].change", "change =", "at most 60 decimal"),
        (('below = "10000.50"', "below = 1\nabove = 2"), "alert[1]", "[[alert]]", "exactly one of"),
        (('below = "10000.50"', 'below = 1\nwindow = "5m"'), "alert[1].window", "window", "only to change"),
        (('below = "10000.50"', 'change = 1\nwindow = "soon"'), "alert[1].window", "window", "span"),
        (('below = "10000.50"', "below = 1\nsnooze = 3"), "alert[1].snooze", "snooze", "unknown key"),
        (('asset = "USDC"', "asset = 5"), "alert[1].asset", "asset = 5", "non-empty string"),
    ],
)
def test_each_alert_problem_names_key_and_line(edit: tuple[str, str], key: str, anchor: str, words: str) -> None:
    text = GOOD + RULE.replace(*edit)
    line = next(i for i, content in enumerate(text.splitlines(), start=1) if content.startswith(anchor))
    with pytest.raises(ConfigError) as caught:
        parse(text, Path("/etc/bt.toml"))
    message = str(caught.value)
    assert message.startswith(f"/etc/bt.toml:{line}: {key}: "), message
    assert words in message


def test_a_venue_may_not_take_the_totals_name() -> None:
    with pytest.raises(ConfigError, match="names the cross-venue totals"):
        parse(GOOD.replace('name = "INTX main"', 'name = "Totals"'))


def test_summary_rules_take_is_for_yes_no_and_numbers_for_amounts() -> None:
    base = GOOD + '\n[[alert]]\nvenue = "INTX main"\n'
    rule = parse(base + 'field = "summary.in_liquidation"\nis = true\n').alerts[0]
    assert rule.kind == "is" and rule.expected is True and rule.wants_summary("INTX main")
    assert parse(base + 'field = "summary.buying_power"\nbelow = 5000\n').alerts[0].kind == "below"
    for text, words in (
        ('field = "summary.in_liquidation"\nabove = 0\n', "use is = true"),
        ('field = "quantity"\nis = true\n', "use below, above or change"),
        ('field = "summary.in_liquidation"\nis = "yes"\n', "true or false"),
        ('field = "summary.in_liquidation"\nasset = "BTC"\nis = true\n', "drop asset"),
    ):
        with pytest.raises(ConfigError, match=words):
            parse(base + text)


def test_plain_http_goes_only_to_a_host_that_is_loopback_not_one_whose_name_starts_like_it() -> None:
    for url in ("http://127.1.2.3:9", "http://LOCALHOST:1"):
        assert parse(GOOD.replace('name = "INTX main"', f'base_url = "{url}"')).venues[1].base_url == url
    for url in (
        "http://localhost.evil.example",
        "http://localhostx:1",
        "http://127.0.0.1.nip.io",
        "http://192.168.1.10",
        "http://172.16.0.1",
        "http://0.0.0.0:8",
    ):
        with pytest.raises(ConfigError, match="unencrypted"):
            parse(GOOD.replace('name = "INTX main"', f'base_url = "{url}"'))

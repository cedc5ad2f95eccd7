"""contrib/: the Grafana dashboard and the Prometheus alerting rules, loaded as Grafana and Prometheus load them,
and every metric they name checked against what a live `serve` on the simulator exports, with the labels and
label values they select, group and print by. A metric renamed or a label dropped in tui/sinks/metrics.py
fails here, not on a desk's dashboard."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.test_serve import Served, get, settled, until
from tui.sim import Simulator

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "contrib" / "prometheus-rules.yml"
DASHBOARD = ROOT / "contrib" / "grafana-dashboard.json"
OURS = re.compile(r"\b(balance_tui_\w+)\b(\s*\{([^}]*)\})?")  # a metric of ours, and its selector
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
LABEL_VALUES = re.compile(r"label_values\(\s*(balance_tui_\w+)\s*,\s*(\w+)\s*\)")
TEMPLATE_LABEL = re.compile(r"\{\{\s*\$?(?:labels\.)?(\w+)\s*\}\}|\$labels\.(\w+)")
TARGET_LABELS = {"job", "instance"}  # Prometheus' own, on every scraped series
NOT_LABELS = {"value", "humanize", "humanizeDuration"}  # template words that are no label


def expressions() -> Iterator[tuple[str, str, str]]:
    """(where, PromQL, the text that prints its labels) for every query in both files."""
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            yield f"rule {rule['alert']}", rule["expr"], json.dumps(rule.get("annotations", {}))
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r}", target["expr"], target.get("legendFormat", "")
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            yield f"variable {variable['name']}", query["query"] if isinstance(query, dict) else query, ""


@pytest.fixture
def exported(sim: Simulator, tmp_path: Path) -> dict[str, list[dict[str, str]]]:
    """Every series a live serve exports once settled, by sample name: the label sets. The config has an alert
    rule (that fires), so that balance_tui_alert_firing has a series, as on a desk with rules."""
    config = tmp_path / "serve.toml"
    sim.write_config(config, refresh_seconds=1)
    with config.open("a") as out:
        out.write('\n[[alert]]\nname = "BTC held"\nvenue = "totals"\nasset = "BTC"\nfield = "total"\nabove = "0"\n')
    served = Served(config)
    try:
        until(lambda: settled(served), "every venue answered and prices in")
        until(lambda: "balance_tui_alert_firing{" in get(served.url + "/metrics").text, "the alert evaluated")
        series: dict[str, list[dict[str, str]]] = {}
        for family in text_string_to_metric_families(get(served.url + "/metrics").text):
            for sample in family.samples:
                series.setdefault(sample.name, []).append(dict(sample.labels))
    finally:
        assert served.stop() == 0, served.err.getvalue()
    return series


def test_the_rules_alert_on_what_a_desk_needs() -> None:
    rules = {r["alert"]: r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    assert (
        rules["BalanceTuiVenueDown"]["for"] == "5m" and "balance_tui_venue_up" in rules["BalanceTuiVenueDown"]["expr"]
    )
    data = rules["BalanceTuiDataOld"]["expr"]
    assert "balance_tui_venue_data_age_seconds" in data and "3 * balance_tui_venue_period_seconds" in data
    assert "balance_tui_alert_firing" in rules["BalanceTuiAlertFiring"]["expr"]
    assert "3 * balance_tui_price_period_seconds" in rules["BalanceTuiPricesStale"]["expr"]
    assert 'balance_tui_usd_net{venue="totals"} <' in rules["BalanceTuiNetWorthBelowFloor"]["expr"]
    for rule in rules.values():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"} and rule["annotations"]["summary"]


def test_every_metric_and_label_they_name_is_served(exported: dict[str, list[dict[str, str]]]) -> None:
    named: set[str] = set()
    for where, expr, printed in expressions():
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), where
        metrics = OURS.findall(expr)
        assert metrics or expr.startswith("up{"), f"{where}: names no metric of ours: {expr}"  # up: the scrape's
        labels: set[str] = set(TARGET_LABELS)
        for name, _, selector in metrics:
            named.add(name)
            assert name in exported, f"{where}: {name} is not served (served: {sorted(exported)})"
            served = exported[name]
            have = {label for series in served for label in series}
            labels |= have
            for label, op, value in MATCHER.findall(selector):
                assert label in have, f"{where}: {name} has no label {label} (it has {sorted(have)})"
                if op == "=" and "$" not in value:
                    assert any(s.get(label) == value for s in served), f"{where}: no {name}{{{label}={value!r}}}"
        for metric, label in LABEL_VALUES.findall(expr):
            assert label in {k for s in exported[metric] for k in s}, f"{where}: {metric} has no label {label}"
        for group in GROUPING.findall(expr):
            for label in filter(None, (part.strip() for part in group.split(","))):
                assert label in labels, f"{where}: groups by {label}, which none of its metrics has"
        for found in TEMPLATE_LABEL.findall(printed):
            label = next(part for part in found if part)
            assert label in labels | NOT_LABELS, f"{where}: prints {label}, which none of its metrics has"
    # the contract's new names are all on the dashboard or in the rules
    assert named >= {
        "balance_tui_price_usd",
        "balance_tui_price_age_seconds",
        "balance_tui_usd_total",
        "balance_tui_usd_loans",
        "balance_tui_usd_net",
        "balance_tui_viewers",
        "balance_tui_usd_value",
        "balance_tui_balance",
        "balance_tui_venue_up",
        "balance_tui_alert_firing",
    }


def test_the_dashboard_is_one_grafana_imports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert [t["refId"] for t in panel["targets"]] == [chr(65 + i) for i in range(len(panel["targets"]))]

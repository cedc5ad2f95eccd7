"""`/metrics`: the current snapshot in Prometheus' text format, read when scraped (a collector of our own,
in a registry of our own: nothing global). Prometheus holds floats, so amounts and values are converted
here and only here; the exact digits stay in `/snapshot`."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from tui.engine.refresher import OK
from tui.sinks.fanout import Fanout
from tui.sinks.poller import Poller
from tui.snapshot.contract import CONTRACT
from tui.untrusted import visible


class SnapshotCollector(Collector):
    def __init__(self, poller: Poller, fanout: Fanout, release: str) -> None:
        self.poller = poller
        self.fanout = fanout
        self.release = release

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        snapshot = self.poller.snapshot()
        worth = snapshot.appraisal
        balance = GaugeMetricFamily(
            "balance_tui_balance",
            "Every amount field of every balance as the venue sent it (a float here; exact in /snapshot)",
            labels=["venue", "account", "asset", "field"],
        )
        value = GaugeMetricFamily(
            "balance_tui_usd_value",
            "What a balance's holding is worth in US dollars at the prices in force (exact in /snapshot)",
            labels=["venue", "account", "asset"],
        )
        up = GaugeMetricFamily(
            "balance_tui_venue_up", "1 if the venue's latest refresh answered in full", labels=["venue"]
        )
        age = GaugeMetricFamily(
            "balance_tui_venue_data_age_seconds",
            "Seconds since the venue's last good answer (+Inf before the first)",
            labels=["venue"],
        )
        for venue in snapshot.venues:
            for account in venue.accounts:
                for held in account.balances:
                    for field, amount in held.amounts.items():
                        if amount is not None:  # float: Prometheus' only number type
                            balance.add_metric(_labels(venue.name, account.id, held.asset, field), float(amount))
                    found = worth.worth(venue.name, account.id, held.asset) if worth is not None else None
                    if found is not None and found.value is not None:
                        value.add_metric(_labels(venue.name, account.id, held.asset), float(found.value))
            up.add_metric(_labels(venue.name), 1.0 if venue.ok else 0.0)
            seconds = venue.age(now)
            age.add_metric(_labels(venue.name), math.inf if seconds is None else seconds)
        yield from (balance, value, up, age)
        yield from self._polling()
        firing = GaugeMetricFamily(
            "balance_tui_alert_firing", "How many targets of the alert rule fire now (0: quiet)", labels=["alert"]
        )
        for name, count in self.poller.firing().items():
            firing.add_metric(_labels(name), float(count))
        yield firing
        yield GaugeMetricFamily("balance_tui_viewers", "Viewers following /events now", value=len(self.fanout.viewers))
        yield CounterMetricFamily(
            "balance_tui_viewers_dropped", "Viewers of /events dropped for not reading", value=self.fanout.dropped
        )
        yield InfoMetricFamily(
            "balance_tui_build",
            "This server's release and contract",
            value={"release": self.release, "contract": str(CONTRACT)},
        )

    def _polling(self) -> Iterator[Metric]:
        """How each key is being polled: calls by outcome, refreshes, their duration, rate-limit waits."""
        requests = CounterMetricFamily(
            "balance_tui_venue_requests",
            "Calls to the venue by outcome: ok, or the error kind",
            labels=["venue", "outcome"],
        )
        refreshes = CounterMetricFamily("balance_tui_venue_refreshes", "Finished refreshes", labels=["venue"])
        duration = GaugeMetricFamily(
            "balance_tui_venue_refresh_seconds", "How long the venue's last refresh took", labels=["venue"]
        )
        waited = CounterMetricFamily(
            "balance_tui_venue_rate_limit_wait_seconds",
            "Seconds the venue's calls waited for its rate limit",
            labels=["venue"],
        )
        for refresher in self.poller.engine.refreshers:
            (name,) = _labels(refresher.name)
            outcomes = {OK: 0, **refresher.requests}
            for outcome, count in sorted(outcomes.items()):
                requests.add_metric([name, outcome], float(count))
            refreshes.add_metric([name], float(self.poller.refreshes.get(name, 0)))
            if refresher.last_duration is not None:
                duration.add_metric([name], refresher.last_duration)
            waited.add_metric([name], refresher.rate_limit_waited)
        yield from (requests, refreshes, duration, waited)


def _labels(*values: str) -> list[str]:
    """Label values are text from outside (names a venue or the config chose): made visible, as everywhere a
    person may read them (a scrape read with curl, a dashboard's legend)."""
    return [visible(value) for value in values]


def registry(poller: Poller, fanout: Fanout, release: str) -> CollectorRegistry:
    """A registry of its own for this server (never prometheus_client's global one)."""
    own = CollectorRegistry(auto_describe=False)
    own.register(SnapshotCollector(poller, fanout, release))
    return own


def exposition(own: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The scrape in the format the scraper asks for (Prometheus' text format, or OpenMetrics), and its type."""
    encode, content_type = choose_encoder(accept or "")
    return encode(own), content_type

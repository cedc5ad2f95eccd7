"""`/metrics`: the current snapshot in Prometheus' text format, read when scraped (a collector of our own,
in a registry of our own: nothing global). Prometheus holds floats, so amounts, values and prices are
converted here and only here (each HELP says so); the exact digits stay in `/snapshot`.

Every per-account series carries the account's id (`account`) and its name (`account_name`); `venue` is the
configured name, `venue="totals"` the firm as a whole (a name the config refuses for a venue)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from tui.engine.refresher import OK
from tui.monitor.alerts import TOTALS
from tui.monitor.valuation import Appraisal, Sums
from tui.sinks.audience import BROWSER, SNAPSHOT, STREAM, Audience
from tui.sinks.fanout import Fanout
from tui.sinks.poller import Poller
from tui.snapshot.contract import CONTRACT
from tui.snapshot.model import Snapshot
from tui.untrusted import visible


class SnapshotCollector(Collector):
    def __init__(self, poller: Poller, fanout: Fanout, audience: Audience, release: str) -> None:
        self.poller = poller
        self.fanout = fanout
        self.audience = audience
        self.release = release

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        snapshot = self.poller.snapshot()
        yield from self._balances(snapshot)
        yield from self._venues(snapshot, now)
        yield from self._worth(snapshot.appraisal, [v.name for v in snapshot.venues])
        yield from self._prices(now)
        yield from self._polling()
        firing = GaugeMetricFamily(
            "balance_tui_alert_firing", "How many targets of the alert rule fire now (0: quiet)", labels=["alert"]
        )
        for name, count in self.poller.firing().items():
            firing.add_metric(_labels(name), float(count))
        yield firing
        yield from self._viewers()
        yield InfoMetricFamily(
            "balance_tui_build",
            "This server's release and contract",
            value={"release": self.release, "contract": str(CONTRACT)},
        )

    def _balances(self, snapshot: Snapshot) -> Iterator[Metric]:
        """Every amount and every value of every balance, named by account id and account name."""
        worth = snapshot.appraisal
        balance = GaugeMetricFamily(
            "balance_tui_balance",
            "Every amount field of every balance as the venue sent it (a float here; exact in /snapshot)",
            labels=["venue", "account", "account_name", "asset", "field"],
        )
        value = GaugeMetricFamily(
            "balance_tui_usd_value",
            "What a balance's holding is worth in US dollars at the prices in force (a float; exact in /snapshot)",
            labels=["venue", "account", "account_name", "asset"],
        )
        for venue in snapshot.venues:
            for account in venue.accounts:
                for held in account.balances:
                    where = (venue.name, account.id, account.name, held.asset)
                    for field, amount in held.amounts.items():
                        if amount is not None:  # float: Prometheus' only number type
                            balance.add_metric(_labels(*where, field), float(amount))
                    found = worth.worth(venue.name, account.id, held.asset) if worth is not None else None
                    if found is not None and found.value is not None:
                        value.add_metric(_labels(*where), float(found.value))
        yield from (balance, value)

    def _venues(self, snapshot: Snapshot, now: float) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "balance_tui_venue_up", "1 if the venue's latest refresh answered in full", labels=["venue"]
        )
        age = GaugeMetricFamily(
            "balance_tui_venue_data_age_seconds",
            "Seconds since the venue's last good answer (+Inf before the first)",
            labels=["venue"],
        )
        period = GaugeMetricFamily(
            "balance_tui_venue_period_seconds",
            "The venue's refresh period in force (the wish, clamped to its rate limit)",
            labels=["venue"],
        )
        for venue in snapshot.venues:
            up.add_metric(_labels(venue.name), 1.0 if venue.ok else 0.0)
            seconds = venue.age(now)
            age.add_metric(_labels(venue.name), math.inf if seconds is None else seconds)
            if venue.period:
                period.add_metric(_labels(venue.name), venue.period)
        yield from (up, age, period)

    @staticmethod
    def _worth(worth: Appraisal | None, venues: list[str]) -> Iterator[Metric]:
        """What each venue and the firm (venue="totals") hold, owe and are worth net, while prices are usable."""
        families = [
            GaugeMetricFamily(
                f"balance_tui_usd_{name}",
                f'{what} in US dollars, per venue and for the firm (venue="totals"); a float, exact as '
                f"/snapshot's {contract}",
                labels=["venue"],
            )
            for name, what, contract in (
                ("total", "What is held (gross)", "usd_total"),
                ("loans", "What is owed (INTX loans)", "usd_loans"),
                ("net", "What is held less what is owed", "usd_net"),
            )
        ]
        if worth is not None and worth.priced:
            sums = [(name, worth.venues.get(name, Sums())) for name in venues] + [(TOTALS, worth.firm)]
            for name, summed in sums:
                for family, amount in zip(families, (summed.gross, summed.loans, summed.net), strict=True):
                    family.add_metric(_labels(name), float(amount))
        yield from families

    def _prices(self, now: float) -> Iterator[Metric]:
        """The prices in force and their age (nothing without a price source)."""
        source = self.poller.engine.prices
        if source is None:
            return
        book = source.book
        price = GaugeMetricFamily(
            "balance_tui_price_usd",
            "An asset's price in US dollars (the name totals use), as the price source last gave it (a float)",
            labels=["asset"],
        )
        for asset, quoted in sorted(book.prices.items()):
            price.add_metric(_labels(asset), float(quoted.usd))
        age = book.age(now)
        yield price
        yield GaugeMetricFamily(
            "balance_tui_price_age_seconds",
            "Seconds since the price source's last good answer (+Inf before the first)",
            value=math.inf if age is None else age,
        )
        yield GaugeMetricFamily(
            "balance_tui_price_period_seconds", "How often the price source is asked", value=book.period
        )

    def _viewers(self) -> Iterator[Metric]:
        viewers = GaugeMetricFamily(
            "balance_tui_viewers",
            "Viewers now, by kind: stream (following /events), snapshot (polled /snapshot in the last "
            f"{self.audience.within:g} s: an attached TUI, a script), browser (sessions of balance-tui web)",
            labels=["kind"],
        )
        counts = {STREAM: len(self.fanout.viewers), **self.audience.counts()}
        for kind in (STREAM, SNAPSHOT, BROWSER):
            viewers.add_metric([kind], float(counts[kind]))
        yield viewers
        yield CounterMetricFamily(
            "balance_tui_viewers_dropped", "Viewers of /events dropped for not reading", value=self.fanout.dropped
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


def registry(poller: Poller, fanout: Fanout, audience: Audience, release: str) -> CollectorRegistry:
    """A registry of its own for this server (never prometheus_client's global one)."""
    own = CollectorRegistry(auto_describe=False)
    own.register(SnapshotCollector(poller, fanout, audience, release))
    return own


def exposition(own: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The scrape in the format the scraper asks for (Prometheus' text format, or OpenMetrics), and its type."""
    encode, content_type = choose_encoder(accept or "")
    return encode(own), content_type

"""What a rule can watch: each area, where its value comes from, and whom it concerns.

Sources:
- `window`: rollup_ended_minute summed over the sample window, per account. Windows are whole
  UTC minutes: a sample period of P seconds reads the last ceil(P / 60) minutes, the current
  (incomplete) one included, so `300` means the current minute and the four before it.
- `quarantine`: quarantined input received in (now - P, now], exact to the millisecond.
- `instant`: the value now (balance, live channels and CPS, consecutive failures); no window.
- `script`: a function of the configured plug-in module (see console.alerting.scripts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter

from store import conditions, metrics
from store.alerting import FEED
from store.metrics import Totals

CUSTOMER, CARRIER = "customer", "carrier"
ACCOUNTS = (CUSTOMER, CARRIER)
WINDOW, QUARANTINE, INSTANT, SCRIPT = "window", "quarantine", "instant", "script"


@dataclass(frozen=True)
class Area:
    """An area a rule may watch; its value is named and written as store.conditions says."""

    name: str
    label: str  # as a rule's area is chosen
    kinds: tuple[str, ...]
    source: str
    metric: Callable[[Totals], float | None] | None = None  # for `window` areas
    has_sample: bool = False  # a minimum sample (attempts in the window) applies

    @property
    def windowed(self) -> bool:
        return self.source in (WINDOW, QUARANTINE)

    @property
    def unit(self) -> str:
        return conditions.measure(self.name).unit

    def format(self, value: float | None) -> str:
        """A value with its unit: `29.8%`; `no data` without one."""
        return conditions.amount(self.name, value)

    def format_limit(self, value: float) -> str:
        """A threshold with its unit, as the rule has it: `30%`."""
        return conditions.limit(self.name, value)


def _count(name: str) -> Callable[[Totals], float]:
    return attrgetter(name)


AREAS: dict[str, Area] = {area.name: area for area in (
    Area("balance", "Balance", ACCOUNTS, INSTANT),
    Area("asr", "ASR", ACCOUNTS, WINDOW, metrics.asr, has_sample=True),
    Area("ner", "NER", ACCOUNTS, WINDOW, metrics.ner, has_sample=True),
    Area("acd", "ACD", ACCOUNTS, WINDOW, metrics.acd, has_sample=True),
    Area("pdd", "PDD", ACCOUNTS, WINDOW, metrics.pdd_s, has_sample=True),
    Area("consecutive_failures", "Consecutive failures", (CARRIER,), INSTANT),
    Area("failovers", "Failovers", (CARRIER,), WINDOW, _count("failover")),
    Area("channels", "Channels", ACCOUNTS, INSTANT),
    Area("cps", "CPS", ACCOUNTS, INSTANT),
    Area("channel_breaches", "Channel breaches", (CUSTOMER,), WINDOW, _count("breach_channel")),
    Area("cps_breaches", "CPS breaches", (CUSTOMER,), WINDOW, _count("breach_cps")),
    Area("quarantined", "Quarantined events", (FEED,), QUARANTINE),
    # Fires when the window holds no attempt at all; clears at the first one.
    Area("no_traffic", "No traffic", ACCOUNTS, WINDOW, _count("attempts")),
    Area("script", "Script", ACCOUNTS, SCRIPT),
)}

DEFAULT_SAMPLE_PERIOD_S = 300
MAX_SAMPLE_PERIOD_S = 86_400


def window_minutes(sample_period_s: int) -> int:
    """Whole minutes read for a sample period: ceil(P / 60), at least one."""
    return max(1, -(-sample_period_s // 60))

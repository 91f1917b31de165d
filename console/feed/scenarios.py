"""The simulator's scenarios by name, in a module of their own so that `noc --help` can list them
without loading the traffic model (console.feed.traffic)."""

SCENARIOS = ("default", "calm", "outage", "false-answer", "pdd-spike", "cps-flood", "balance-out")

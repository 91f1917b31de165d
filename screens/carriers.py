"""The carrier list: consecutive failures, channels, CPS, ASR, ACD, PDD, attempts, last call and
status; sorted by failures (s) it puts a route that is down on top."""

from __future__ import annotations

from screens.accounts import AccountListScreen


class CarriersScreen(AccountListScreen):
    KIND = "carrier"

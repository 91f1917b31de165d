"""The customer list: balance, channels, CPS, ASR, ACD, PDD, attempts, last call and status."""

from __future__ import annotations

from screens.accounts import AccountListScreen


class CustomersScreen(AccountListScreen):
    KIND = "customer"

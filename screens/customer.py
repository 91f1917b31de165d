"""Placeholder until the real screen lands."""

from screens.customers import CustomersScreen


class CustomerScreen(CustomersScreen):
    def __init__(self, account: str) -> None:
        super().__init__()
        self.account = account

"""Placeholder until the real screen lands."""

from screens.carriers import CarriersScreen


class CarrierScreen(CarriersScreen):
    def __init__(self, account: str) -> None:
        super().__init__()
        self.account = account

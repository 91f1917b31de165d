"""Placeholder until the real screen lands."""

from textual.widgets import Footer, Static

from screens.base import DataScreen
from screens.chrome import NocHeader


class CarriersScreen(DataScreen):
    def compose(self):
        yield NocHeader("CarriersScreen")
        yield Static("carriers")
        yield Footer()

    def gather(self, data, now_ms):
        return (data.feed(), now_ms)

    def show(self, snapshot):
        feed, now_ms = snapshot
        self.query_one(NocHeader).show_feed(feed, now_ms, role=self.app.role,
                                            read_only=self.app.read_only, tz=self.tz)

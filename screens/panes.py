"""A tab's content on a detail screen: it reads only while it is the tab being looked at.

A detail screen (a customer, a carrier, the alerts) holds several panes in a TabbedContent; its
`gather` asks the active pane for its snapshot, and its `show` hands the result back to that pane,
so a hidden tab costs nothing. PaneTabs gives such a screen its tab keys.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from textual import work
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import TabbedContent, Tabs

from screens.base import live_as_of
from screens.formats import as_of
from store.database import StoreError
from store.views import ConsoleData


class DataPane(Vertical):
    """Override `gather` (worker thread: read plain attributes only, touch no widget) and `show`
    (UI thread). Snapshots must compare equal when nothing changed, so nothing is redrawn."""

    account: str | None = None  # the account shown, on a customer's or a carrier's screen

    def gather(self, data: ConsoleData, now_ms: int) -> Hashable:
        raise NotImplementedError

    def show(self, snapshot: Hashable) -> None:
        raise NotImplementedError

    def live_as_of(self, data: ConsoleData, now_ms: int) -> str:
        """(worker thread) When the live figures the pane shows (channels, calls in progress)
        were current, if not now ("as of 12:04"; "" while current): see screens.base."""
        as_of_ms = live_as_of(data.feed(), now_ms, self.app.role)
        return "" if as_of_ms is None else as_of(as_of_ms, now_ms, self.app.display_tz)

    def for_account(self, account: str) -> None:
        """Show another account (its screen is kept for the next one opened): what the last
        one showed stays hidden until this one's first read is shown. Extend it to forget what
        else the pane holds of the last account."""
        self.account = account
        self.display = False

    def refresh_now(self) -> None:
        """Read again at once (after a filter or a segment changed)."""
        screen = self.screen
        if hasattr(screen, "refresh_now"):
            screen.refresh_now()

    class Written(Message):
        """A write done on a thread: what to tell the user, and whether it failed."""

        def __init__(self, said: str, failed: bool) -> None:
            super().__init__()
            self.said, self.failed = said, failed

    @work(thread=True, group="pane-writes")
    def write(self, change: Callable[[], object], done: str) -> None:
        """Run a write on a thread (the event loop only draws: a store kept busy by another
        program must not freeze the console); say what happened, or why it failed; then read
        again. Not exclusive: every write asked for is carried out and answered."""
        try:
            change()
        except (StoreError, ValueError, LookupError) as error:
            self.post_message(self.Written(str(error), failed=True))
        else:
            self.post_message(self.Written(done, failed=False))

    def on_data_pane_written(self, written: Written) -> None:
        written.stop()
        if written.failed:
            self.notify(written.said, severity="error", timeout=10)
            return
        self.notify(written.said)
        self.refresh_now()


class PaneTabs:
    """Tab keys for a screen whose TabbedContent holds `self.panes` (a dict, in tab order) and
    which keeps the tab shown in `self.active` (a plain attribute, for `gather`'s worker thread).

    `<` `>` read the tab bar's own state, not `active`: keys typed quickly come before the message
    that the last one switched. And they move the focus at once, not once the tab is drawn: a pane
    taking the focus makes its tab the active one, so a late focus would undo the next key."""

    PANE_PREFIX = ""  # the TabPanes' ids are the tab names with this before them
    FOCUS = "LiveTable, SummaryTable"  # what in a pane takes the keys, unless the pane itself

    def on_mount(self) -> None:
        self.call_after_refresh(self.focus_pane)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        tab = event.pane.id.removeprefix(self.PANE_PREFIX)
        if tab == self.active:
            return
        self.active = tab
        # Arrowing along the tab bar keeps its focus; `<` `>` have moved it already.
        if not isinstance(self.focused, Tabs) and not self._has_focus_in(tab):
            self.call_after_refresh(self.focus_pane)
        self.refresh_now()

    def action_switch_tab(self, step: int) -> None:
        tabbed, tabs = self.query_one(TabbedContent), list(self.panes)
        now = tabs.index(tabbed.active.removeprefix(self.PANE_PREFIX))
        tabbed.active = self.PANE_PREFIX + tabs[(now + step) % len(tabs)]
        self.focus_pane()

    def show_pane(self, tab: str, snapshot: Hashable) -> None:
        """Hand a pane its snapshot, showing it if it was hidden for another account."""
        pane = self.panes[tab]
        pane.show(snapshot)
        if not pane.display:
            pane.display = True
            self.focus_pane()  # none of it could take the keys while hidden

    def show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = self.PANE_PREFIX + tab

    def focus_pane(self) -> None:
        """Give the keys to the shown tab's content; to the tab bar when it has nothing to take
        them (so that no hidden tab keeps them)."""
        tabbed = self.query_one(TabbedContent)
        pane = self.panes[tabbed.active.removeprefix(self.PANE_PREFIX)]
        target = pane if pane.can_focus else next(
            (w for w in pane.query(self.FOCUS) if w.focusable), None)
        self.set_focus(target or tabbed.query_one(Tabs))

    def _has_focus_in(self, tab: str) -> bool:
        return self.focused is not None and self.panes[tab] in self.focused.ancestors_with_self


class AccountTabs(PaneTabs):
    """The tabs of a customer's or a carrier's screen, which is kept and shows the next account
    opened in place: mounting a screen's widgets again was most of the cost of opening one. An
    account opened again paints at once as it was last shown, and its first read follows."""

    account: str
    KEPT = 16  # the accounts whose last snapshot is kept

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._last_shown: OrderedDict[str, Any] = OrderedDict()  # account -> snapshot

    def deliver(self, snapshot: Any, *args, **kwargs) -> None:
        super().deliver(snapshot, *args, **kwargs)
        if self._last_snapshot is snapshot:  # shown: of the account now shown
            self._last_shown[self.account] = snapshot
            self._last_shown.move_to_end(self.account)
            while len(self._last_shown) > self.KEPT:
                self._last_shown.popitem(last=False)

    def show_account(self, account: str) -> None:
        """Show this account, from its first tab (the same one: as it was left)."""
        if account == self.account:
            return
        self.account = account
        for pane in self.panes.values():
            pane.for_account(account)
        self.active = next(iter(self.panes))
        if self.is_mounted:
            self.forget_account()
            self.show_tab(self.active)
            self.focus_pane()
        self.refresh_now()
        shown = self._last_shown.get(account)
        if self.is_mounted and shown is not None and shown.tab == self.active:
            self.show(shown)  # not taken as read: the read asked for above shows what changed

    def forget_account(self) -> None:
        """Clear what the screen shows of the last account outside its panes."""
        raise NotImplementedError

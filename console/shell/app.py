"""The Textual app: wires the store's read models to the screens, and runs the writer if it is one.

One refresh loop feeds the visible screen a snapshot at a steady rate (never per event). Reads
run on worker threads; polls never overlap (the next is armed when the last one ends); and when
the database has not changed since the last poll, nothing is read at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import tzinfo
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo

from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.timer import Timer

from console.feed.client import FeedError
from console.feed.printable import printable, printable_lines
from console.feed.service import IngestService
from console.shell.options import ConsoleOptions
from console.shell.themes import THEMES
from screens.alerts import AlertsScreen
from screens.base import DataScreen
from screens.carrier import CarrierScreen
from screens.carriers import CarriersScreen
from screens.customer import CustomerScreen
from screens.customers import CustomersScreen
from screens.dashboard import DashboardScreen
from screens.help import HelpScreen
from screens.navigation import Back, OpenAccount, ReadNow, ShowMode
from screens.palette import AccountCommands, KeyCommands
from screens.quarantine import QuarantineScreen
from screens.stylesheets import stylesheets
from screens.timezone import TimezonePicker
from store.actions import request_control
from store.database import ChangeProbe, StoreError, change_probe
from store.views import ConsoleData
from widgets.dialogs import DialogHost

STALE_AFTER_S = 20.0  # re-read even an unchanged database now and then: windows move with time
WATCHDOG_S = 5.0
WARM_PAUSE_S = 0.1  # between mounting one screen and the next, ahead of the keys
STOP_TIMEOUT_S = 10.0  # what is not stored by then is fetched again from the feed on restart
LAID_OUT_FOR = (80, 24)  # the smallest terminal every screen is laid out for
log = logging.getLogger(__name__)


class ReadDone(Message):
    """A screen's read, done on a thread: its snapshot, or the error that stopped it."""

    def __init__(self, screen: DataScreen, snapshot: object = None, read_at: float = 0.0,
                 marker: tuple = (), asked: object = None, *, error: Exception | None = None):
        super().__init__()
        self.screen, self.snapshot, self.read_at = screen, snapshot, read_at
        self.marker, self.asked, self.error = marker, asked, error


class NocApp(DialogHost, App):
    """noc's console. With a `service` it is the database's writer too; without, a viewer."""

    TITLE = "noc"
    CSS_PATH = ["app.tcss", *stylesheets()]
    COMMANDS = App.COMMANDS | {AccountCommands, KeyCommands}
    MODES = {
        "dashboard": DashboardScreen,
        "customers": CustomersScreen,
        "carriers": CarriersScreen,
        "alerts": AlertsScreen,
        "quarantine": QuarantineScreen,
    }
    DEFAULT_MODE = "dashboard"
    BINDINGS = [
        Binding("1", "switch_mode('dashboard')", "Dashboard"),
        Binding("2", "switch_mode('customers')", "Customers"),
        Binding("3", "switch_mode('carriers')", "Carriers"),
        Binding("4", "switch_mode('alerts')", "Alerts"),
        Binding("5", "switch_mode('quarantine')", "Quarantine"),
        Binding("z", "pick_timezone", "Time zone"),
        Binding("question_mark,f1", "help", "Help"),
        Binding("ctrl+r", "refresh_data", "Refresh now", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        options: ConsoleOptions,
        *,
        service: IngestService | None = None,
        on_start: Callable[[NocApp], Awaitable[None]] | None = None,
        on_stop: Callable[[NocApp], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__()
        self.options = options
        self.service = service
        self.on_start = on_start
        self.on_stop = on_stop
        self.data = ConsoleData(options.db_path)
        self.clock = options.clock
        self.display_tz: tzinfo = ZoneInfo(options.timezone)
        # A console given a writer, or one to start (the demo's), is its database's writer.
        self.role = "writer" if service is not None or on_start is not None else "viewer"
        for theme in THEMES:
            self.register_theme(theme)
        if options.theme not in self.available_themes:
            raise ValueError(
                f"unknown theme {options.theme!r}; "
                f"choose from {', '.join(sorted(self.available_themes))}"
            )
        self.theme = options.theme
        self._poll_timer: Timer | None = None
        self._to_warm: list[str] | None = None  # screens still to mount while idle
        self._css_refreshed: tuple = ()  # the theme and style sheets when last refreshed
        self._styled_as: WeakKeyDictionary[Screen, tuple] = WeakKeyDictionary()  # and each screen
        self._polling = False
        self._poll_again = False
        self._reading: tuple[Screen, int] | None = None  # the screen and `asked` of the read
        self._probe: ChangeProbe | None = None
        self._parent_pid = os.getppid()
        self._too_small: tuple[int, int] | None = None  # the size last said to be too small

    def refresh_css(self, animate: bool = True) -> None:
        """Textual re-parses every style sheet and restyles the whole screen stack whenever a
        screen comes up that was mounted since the last refresh (each mode's first visit, each
        account opened): over half of such a key's cost, for nothing, since a screen is styled
        as it mounts. Re-parse only when the theme or a style sheet changed, and restyle a
        screen kept from before then only."""
        stamp = (self._css_update_count, len(self.stylesheet.source))
        if stamp != self._css_refreshed:
            self._css_refreshed = stamp
            super().refresh_css(animate)
        elif self.screen_stack and self._styled_as.get(self.screen) != stamp:
            self.stylesheet.update(self.screen, animate=animate)
        if self.screen_stack:
            self._styled_as[self.screen] = stamp
            self.screen._css_update_count = self._css_update_count  # as Textual's refresh notes

    @property
    def read_only(self) -> bool:
        return self.options.read_only

    # Start and stop -------------------------------------------------------------------

    async def on_mount(self) -> None:
        self._probe = change_probe(self.options.db_path)
        if self.on_start is not None:  # after the first frame: the console shows at once
            self.call_after_refresh(self.run_worker, self.on_start(self), name="start",
                                    group="start")
        elif self.service is not None:
            self.start_writer()
        if self.options.watchdog:
            self._watch_terminal()
        # A screen shown again reads at once if the store changed since it last read.
        self.screen_change_signal.subscribe(self, lambda _: self._poll_soon())
        self.call_after_refresh(self._poll)
        self._say_if_too_small(*self.size)

    def start_writer(self) -> None:
        """Run `service`, this console's writer (given, or made by `on_start`)."""
        self.role = "writer"
        self.run_worker(self._run_writer(), name="writer", group="writer")

    async def _run_writer(self) -> None:
        try:
            await self.service.open()
        except StoreError as error:
            self.service, self.role = None, "viewer"
            self.notify(f"{error} (this console stays a viewer)", severity="error", timeout=30)
            return
        for warning in self.service.warnings:
            self.notify(warning, title="Feed", severity="warning", timeout=30)
        try:
            await self.service.run()
        except (FeedError, StoreError) as error:  # StoreFailed: the store could not take it
            self.role = "viewer"
            self.notify(f"the writer stopped: {error}", severity="error", timeout=60)

    async def action_quit(self) -> None:
        try:
            await asyncio.wait_for(self._stop_services(), STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("the writer did not stop within %s s; leaving anyway", STOP_TIMEOUT_S)
        self.exit()

    async def _stop_services(self) -> None:
        """Let the writer store what it has received, then stop the demo's simulator."""
        for worker in self.workers:
            if worker.group == "start":  # still starting: what it started is stopped below
                worker.cancel()
        if self.service is not None:
            self.service.stop()
            for worker in self.workers:
                if worker.group == "writer":
                    await worker.wait()
        if self.on_stop is not None:
            await self.on_stop(self)

    def _watch_terminal(self) -> None:
        """Exit when the SSH session drops: on SIGHUP, or when the parent shell is gone."""
        # No signals where the loop is not the main thread's (tests).
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._hung_up)
        self.set_interval(WATCHDOG_S, self._check_parent)

    def _hung_up(self) -> None:
        # A timer thread ends the process even if the event loop gets stuck: with the terminal
        # gone, Textual's own exit can block for good writing to the dead pty.
        deadline = threading.Timer(STOP_TIMEOUT_S, os._exit, (0,))
        deadline.daemon = True
        deadline.start()
        self.call_later(self._terminal_gone)

    async def _terminal_gone(self) -> None:
        """Store what the writer holds, then leave at once."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_services(), STOP_TIMEOUT_S)
        os._exit(0)

    async def _check_parent(self) -> None:
        if os.getppid() != self._parent_pid:
            self._hung_up()

    def on_resize(self, event: events.Resize) -> None:
        self._say_if_too_small(event.size.width, event.size.height)

    def _say_if_too_small(self, width: int, height: int) -> None:
        """Below 80x24 the screens leave out what does not fit: say so, once per size, rather
        than let it pass for all there is."""
        least_width, least_height = LAID_OUT_FOR
        fits = width >= least_width and height >= least_height
        if fits or self._too_small == (width, height):
            return
        self._too_small = (width, height)
        self.notify(f"This terminal is {width}x{height}: noc is laid out for {least_width}x"
                    f"{least_height} or more, so some columns and panels are left out",
                    title="Terminal too small", severity="warning", timeout=10)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if not self.options.cursor_blink and hasattr(event.widget, "cursor_blink"):
            event.widget.cursor_blink = False

    # The refresh loop -----------------------------------------------------------------

    def refresh_data(self) -> None:
        """Read for the visible screen now, changed or not (after a filter changed, or ctrl+r)."""
        if isinstance(self.screen, DataScreen):
            self.screen.read_marker = None
        self._poll_soon()

    def _poll_soon(self) -> None:
        if self._polling:
            if not self._reading_stale():
                self._poll_again = True
                return
            self._reading = None  # dropped when it ends: the read begun now sets the next poll
        if self._poll_timer is not None:
            self._poll_timer.stop()
        self.call_later(self._poll)

    def action_refresh_data(self) -> None:
        self.refresh_data()

    def _store_marker(self) -> object:
        """What changes whenever the store does (as seen by this console's probe)."""
        return self._probe.marker()

    def _poll(self) -> None:
        """Read for the visible screen if the store changed (or what it shows grew stale). The
        read runs on a thread and comes back as a message: keys and every other message are
        handled meanwhile, however long a busy machine makes the read."""
        self._polling = True
        self._poll_timer = None
        screen = self._visible_screen()
        try:
            if isinstance(screen, DataScreen):
                now = time.monotonic()
                marker = self._store_marker()
                stale = (screen.current_as_of is None or screen._last_snapshot is None
                         or now - screen.current_as_of > STALE_AFTER_S)
                if marker != screen.read_marker or stale:
                    self._reading = (screen, screen.asked)
                    self._read(screen, now, marker, screen.asked)
                    return  # the next poll is set when the read is done
        except Exception as error:  # a failed probe must not stop the loop; it is shown instead
            self.notify(f"could not read the store: {error}", severity="error")
        self._poll_next()

    @work(thread=True, group="poll", exit_on_error=False)
    def _read(self, screen: DataScreen, now: float, marker: tuple, asked: object) -> None:
        try:
            snapshot = screen.gather(self.data, self.clock())
        except Exception as error:
            self.post_message(ReadDone(screen, asked=asked, error=error))
        else:
            self.post_message(ReadDone(screen, snapshot, now, marker, asked))

    def _reading_stale(self) -> bool:
        """The read under way is for what the visible screen no longer shows (another screen,
        tab, filter or account): its result will be dropped, so a key need not wait for it."""
        screen = self._visible_screen()
        return self._reading is not None and (
            self._reading[0] is not screen or self._reading[1] != getattr(screen, "asked", None))

    def on_read_done(self, done: ReadDone) -> None:
        if self._reading != (done.screen, done.asked):
            return  # a read overtaken by one begun for what is shown now, which goes on
        self._reading = None
        if done.error is not None:
            self.notify(f"could not read the store: {done.error}", severity="error")
        elif done.screen is self._visible_screen():
            done.screen.deliver(done.snapshot, done.read_at, done.marker, done.asked)
            if self._to_warm is None and self.options.warm_screens:
                self._to_warm = [*self.MODES, "customer", "carrier"]
                self.set_timer(WARM_PAUSE_S, self._warm_next)
        self._poll_next()

    @property
    def warmed(self) -> bool:
        """Every screen a key leads to is mounted (see ConsoleOptions.warm_screens)."""
        return self._to_warm == []

    def _warm_next(self) -> None:
        """Mount the next screen a key leads to (a mode's, or the kept account screens) before
        the key is pressed: mounting one takes 50-300 ms of this loop. One at a time, keys and
        frames between. Textual has no public call to mount a screen without showing it."""
        if not self.is_running:  # closing: a mode added now breaks Textual's closing its stacks
            return
        while self._to_warm:
            name = self._to_warm.pop(0)
            if name in self.MODES:
                if name not in self._screen_stacks:
                    self._init_mode(name)
                    break
            elif not self.is_screen_installed(f"{name}-account"):
                self._get_screen(self._account_screen(name, ""))
                break
        if self._to_warm:
            self.set_timer(WARM_PAUSE_S, self._warm_next)

    def _visible_screen(self) -> Screen | None:
        """The screen shown, or None while the app starts or closes (no screen on the stack)."""
        return self.screen_stack[-1] if self.screen_stack else None

    def _poll_next(self) -> None:
        self._polling = False
        if self._poll_again:  # asked for during this poll: at once (a 0 s timer never fires)
            self._poll_again = False
            self.call_later(self._poll)
        else:
            self._poll_timer = self.set_timer(self.options.refresh, self._poll)

    # Actions --------------------------------------------------------------------------

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Every notification (a screen's too) as plain text: many name an account or a call
        from the feed, which must neither be read as markup nor write control characters."""
        super().notify(printable_lines(message), title=printable(title), severity=severity,
                       timeout=timeout, markup=False)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_pick_timezone(self) -> None:
        def chosen(name: str | None) -> None:
            if name:
                self.display_tz = ZoneInfo(name)
                self.notify(f"Times shown in {name}; buckets stay UTC")
                if isinstance(self.screen, DataScreen):
                    self.screen.refresh_now()

        self.push_screen(TimezonePicker(str(self.display_tz)), chosen)

    def on_open_account(self, message: OpenAccount) -> None:
        self.open_account(message.kind, message.account)

    def on_show_mode(self, message: ShowMode) -> None:
        self.switch_mode(message.mode)

    def on_back(self, message: Back) -> None:
        if len(self.screen_stack) > 1:
            self.pop_screen()

    def on_read_now(self, message: ReadNow) -> None:
        self.refresh_data()

    def open_account(self, kind: str, account: str) -> None:
        """Jump to a customer or carrier (from a list or the command palette). One screen of
        each kind is kept and shows the account asked for in place, over its list."""
        self.switch_mode("customers" if kind == "customer" else "carriers")
        screen = self._account_screen(kind, account)
        screen.show_account(account)
        if screen not in self.screen_stack:
            self.push_screen(screen)
        while self.screen is not screen:  # a dialog over it
            self.pop_screen()

    def _account_screen(self, kind: str, account: str) -> CustomerScreen | CarrierScreen:
        """The kept screen of customers or carriers (made for `account` if there is none)."""
        name = f"{kind}-account"
        if not self.is_screen_installed(name):
            self.install_screen(CustomerScreen(account) if kind == "customer"
                                else CarrierScreen(account), name)
        return self.get_screen(name)

    def request_control(self, **fields) -> str | None:
        """Ask the writer to carry out a control action; refused in read-only mode."""
        if self.read_only:
            self.notify("Read-only console: actions are disabled", severity="warning")
            return None
        return request_control(
            self.options.db_path,
            now_ms=self.clock(),
            requested_by=f"console pid {os.getpid()}",
            **fields,
        )

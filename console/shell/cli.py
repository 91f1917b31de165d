"""The `noc` command: the console, and its headless subcommands (simulate, ingest, report,
bridge).

Every error a user can cause ends in one line saying what is wrong and what to do, and a
non-zero exit code; never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from console.feed.printable import printable
from console.feed.scenarios import SCENARIOS
from console.shell import logs
from store.database import StoreError, WriterLock, is_postgres, prepare, private_folder

# The heavy parts (Textual, SQLModel, websockets, the ingest service) are imported by the
# commands that use them, so that `noc --help` and a mistyped option answer at once.
if TYPE_CHECKING:
    from console.feed.service import IngestSettings
    from console.shell import config as config_module
    from console.shell.options import ConsoleOptions

EXIT_FAILURE = 1  # a mistake to fix before starting again: a setting, a file, a second writer
EXIT_STORE_FAILED = 3  # the store could not take the feed; the next start resumes, losing nothing
MIN_TOKEN_CHARS = 16  # noc serve: a token to guard a console on a network
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies
SERVING = re.compile(r"serving (ws://\S+)")  # what `noc simulate` says once it listens
CLOSE_SIMULATOR_S = 10.0
DEMO_BACKFILL_S = 600.0  # the demo's last ten minutes at full rate, on its graphs at once
DEMO_QUIET_HISTORY_S = 86_400 - DEMO_BACKFILL_S  # and before them the rest of a day, quietly


class Failure(click.ClickException):
    """Ends the command with `noc: <message>` and exit code 1 (or `exit_code`)."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None) -> None:
        click.echo(f"noc: {self.message}", err=True)


def parse_time(value: str | None, option: str) -> int | None:
    """Unix seconds or ISO 8601 (UTC unless it says otherwise) to milliseconds."""
    if value is None:
        return None
    try:
        return round(float(value) * 1000)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither Unix seconds nor ISO 8601 (e.g. 2026-11-21T10:00:00Z)",
            param_hint=option,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def load_settings(config_path: Path | None) -> config_module.Settings:
    from console.shell import config as config_module

    try:
        return config_module.load(config_path)
    except config_module.ConfigError as error:
        raise Failure(str(error)) from None


def console_options(command):
    """Options every console command shares."""
    for option in reversed(
        [
            click.option(
                "--refresh",
                type=click.FloatRange(min=0.1),
                help="Seconds between screen refreshes (default 1; console.refresh).",
            ),
            click.option(
                "--read-only",
                is_flag=True,
                default=None,
                help="Forbid actions (ending calls, penalties): for wall displays.",
            ),
            click.option(
                "--timezone", help="Display time zone, e.g. Europe/London (data stays UTC)."
            ),
            click.option(
                "--low-colour",
                "--low-color",
                "low_colour",
                is_flag=True,
                help="Use only the 16 ANSI colours (NO_COLOR is honoured as well).",
            ),
        ]
    ):
        command = option(command)
    return command


def console_settings(
    settings: config_module.Settings, path: Path, *, refresh, read_only, timezone, low_colour
) -> ConsoleOptions:
    from console.shell.options import LOW_COLOUR_THEME, ConsoleOptions

    zone = timezone or settings.console.timezone
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"unknown time zone {zone!r}", param_hint="--timezone") from None
    return ConsoleOptions(
        db_path=path,
        refresh=refresh or settings.console.refresh,
        read_only=settings.console.read_only if read_only is None else read_only,
        timezone=zone,
        theme=LOW_COLOUR_THEME if low_colour else settings.console.theme,
    )


def ingest_settings(settings: config_module.Settings, *, console: bool = False) -> IngestSettings:
    """The writer's settings; a console that writes works in small slices to stay responsive."""
    from console.feed.service import IngestSettings
    from store.writer import Retention

    return IngestSettings(
        failure_codes=settings.failure_codes,
        retention=Retention(settings.store.minute_rollup_days, settings.store.event_log_days,
                            settings.store.call_days),
        slice_events=2_000 if console else IngestSettings.slice_events,
        ca_file=settings.feed.ca_file,
        max_open_calls=settings.store.max_open_calls,
        max_accounts=settings.store.max_accounts,
    )


def alert_engine(settings: config_module.Settings, path: Path):
    """The alert engine a writer runs, unless [alerts] enabled = false (imported only then:
    the engine's libraries are not small)."""
    from console.alerting.engine import AlertEngine

    alerting = settings.alerting
    return AlertEngine(path, alerting) if alerting.enabled else None


def traffic_options(command):
    """The simulated traffic's options, shared by `simulate` and `demo`."""
    for option in reversed([
        click.option("--seed", default=1, show_default=True, type=int,
                     help="Same seed, same traffic."),
        click.option("--cps", default=20.0, show_default=True,
                     type=click.FloatRange(min=0, min_open=True),
                     help="Average new calls per second."),
        click.option("--scenario", default="default", show_default=True,
                     type=click.Choice(SCENARIOS), help="Incidents to play (default: random)."),
    ]):
        command = option(command)
    return command


def history_options(backfill: float, quiet_history: float):
    """The simulated history's options (`demo` and `simulate`), with their defaults."""
    def decorate(command):
        for option in reversed([
            click.option("--backfill", default=backfill, show_default=True,
                         type=click.FloatRange(min=0),
                         help="Seconds of history generated at start."),
            click.option("--history", "quiet_history", default=quiet_history,
                         show_default=True, type=click.FloatRange(min=0),
                         help="Seconds of quiet history before the backfill (calls at 1/400 of "
                              "--cps, no incident): with the demo's backfill, a day of hourly "
                              "rows."),
        ]):
            command = option(command)
        return command

    return decorate


class DatabaseTarget(click.ParamType):
    """A database file's path, or a postgresql:// URL (kept whole: a Path folds its //)."""

    name = "FILE|URL"

    def convert(self, value, param, ctx):
        if isinstance(value, str) and is_postgres(value):
            return value
        return click.Path(dir_okay=False, path_type=Path).convert(value, param, ctx)


db_option = click.option(
    "--db",
    "db_path",
    type=DatabaseTarget(),
    help="Database file or postgresql:// URL (default: store.url or store.path in the config, "
    "or $NOC_DB).",
)


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default: $NOC_CONFIG or the XDG config folder's noc/config.toml).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True)
@click.option(
    "--feed", "feed_url", help="Feed URL (default: feed.url in the config, or $NOC_FEED_URL)."
)
@db_option
@click.option("--viewer", is_flag=True, help="Only view the database, even if no writer runs.")
@console_options
@config_option
@click.pass_context
def main(ctx: click.Context, feed_url, db_path, viewer, config_path, **console_flags) -> None:
    """noc: a terminal monitoring console for VoIP wholesale operators.

    With no command, opens the console on the configured database. If no `noc ingest` (or other
    console) is writing to it, this console subscribes to the feed and writes it itself;
    otherwise it is a viewer of what the writer stores.
    """
    logs.configure(logging.WARNING)
    if ctx.invoked_subcommand is not None:
        return
    from console.feed.client import FeedError
    from console.feed.service import IngestService

    settings = load_settings(config_path)
    path = db_path or settings.db_path
    if not is_postgres(path):
        private_folder(path.parent)
    service = None
    if not viewer and not WriterLock.for_database(path).held_by_other():
        try:
            service = IngestService(
                path,
                feed_url or settings.feed.url,
                token=settings.feed.token,
                settings=ingest_settings(settings, console=True),
                engine=alert_engine(settings, path),
            )
        except FeedError as error:
            raise Failure(str(error)) from None
    try:
        prepare(path, create=service is not None)
    except StoreError as error:
        raise Failure(str(error)) from None
    run_console(console_settings(settings, path, **console_flags), service=service)


@main.command()
@traffic_options
@history_options(DEMO_BACKFILL_S, DEMO_QUIET_HISTORY_S)
@click.option(
    "--db",
    "db_path",
    type=DatabaseTarget(),
    help="Database file (default: demo.db in the XDG data folder; started afresh).",
)
@console_options
@config_option
def demo(seed, cps, scenario, backfill, quiet_history, db_path, config_path,
         **console_flags) -> None:
    """The simulator on loopback and the console against it: a living network, no switch needed."""
    from console.shell.config import default_db_path

    settings = load_settings(config_path)
    path = db_path or default_db_path().with_name("demo.db")
    if is_postgres(path):  # a demo starts its database afresh: never a server's
        raise Failure("noc demo keeps its own SQLite file, started afresh: give --db a file "
                      "(noc ingest writes a feed into PostgreSQL)")
    private_folder(path.parent)
    if WriterLock.for_database(path).held_by_other():
        raise Failure(f"{path} is in use by another noc demo: stop it, or give --db another file")
    for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)  # the simulator starts at seq 1: so must the database
    prepare(path)
    simulator_log = path.with_name(f"{path.stem}-simulator.log")
    simulator = start_simulator(simulator_log, "--seed", seed, "--cps", cps, "--scenario",
                                scenario, "--backfill", backfill, "--history", quiet_history)
    running: list = []  # the alerting, once started

    def parts():
        """The alerting and the writer, imported and made on a thread: the console draws its
        first frame meanwhile."""
        from console.alerting.demo import DemoAlerting
        from console.feed.service import IngestService

        alerting = DemoAlerting.unstored(settings.alerting, path,
                                         own_mail=not settings.email.host)
        return alerting, IngestService

    async def start(app) -> None:
        """After the first frame: the feed first, then the alert rules (seconds to check)."""
        alerting, service = await asyncio.to_thread(parts)
        engine = await alerting.start()
        running.append(alerting)
        try:
            url = await simulator_url(simulator, simulator_log)
        except Failure as error:
            app.notify(str(error), severity="error", timeout=60)
            return
        app.service = service(path, url, token=None,
                              settings=ingest_settings(settings, console=True), engine=engine)
        app.start_writer()
        app.notify("Loading the demo's day of history: the header says how far it is, and "
                   "today's figures show once it is all stored", timeout=8)
        await asyncio.to_thread(alerting.store_rules)
        if alerting.notice:
            app.notify(alerting.notice, timeout=8)

    async def stop(app) -> None:
        await asyncio.to_thread(stop_simulator, simulator)
        for part in running:
            await part.stop()

    try:
        run_console(console_settings(settings, path, **console_flags), on_start=start,
                    on_stop=stop)
    finally:
        stop_simulator(simulator)


def start_simulator(log: Path, *options) -> subprocess.Popen:
    """`noc simulate` on a free loopback port, in a process of its own: it makes the demo's
    history on another core while this one starts the console, and it ends with this process
    (the kernel sends it SIGTERM when its parent dies, kill -9 included)."""
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "console.shell.cli", "simulate", "--host", "127.0.0.1",
             "--port", "0", *map(str, options)],
            stdin=subprocess.DEVNULL, stdout=output, stderr=output, preexec_fn=_die_with_parent)


def _die_with_parent() -> None:
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


async def simulator_url(simulator: subprocess.Popen, log: Path) -> str:
    """The feed URL `noc simulate` says it serves, once it has said it."""
    while True:
        said = SERVING.search(log.read_text(errors="replace"))
        if said:
            return said[1]
        if simulator.poll() is not None:
            raise Failure(f"the demo's simulator stopped: {log.read_text(errors='replace')}")
        await asyncio.sleep(0.02)


def stop_simulator(simulator: subprocess.Popen) -> None:
    if simulator.poll() is None:
        simulator.terminate()
        try:
            simulator.wait(CLOSE_SIMULATOR_S)
        except subprocess.TimeoutExpired:
            simulator.kill()
            simulator.wait()


def run_console(options: ConsoleOptions, **hooks) -> None:
    from console.shell.app import NocApp

    try:
        app = NocApp(options, **hooks)
    except ValueError as error:  # an unknown theme, named in the message
        raise Failure(str(error)) from None
    app.run()


def _frame_events(value: str) -> tuple[int, int]:
    fewest, _, most = value.partition("-")
    try:
        sizes = int(fewest), int(most or fewest)
    except ValueError:
        raise click.BadParameter(f"{value!r}: give N or FEWEST-MOST, e.g. 1-100") from None
    if not 1 <= sizes[0] <= sizes[1]:
        raise click.BadParameter(f"{value!r}: counts from 1 up, the fewest first")
    return sizes


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@traffic_options
@click.option(
    "--speed",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Time factor (0: as fast as the subscriber reads).",
)
@click.option(
    "--buffer",
    default=100_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Events kept for resuming subscribers.",
)
@click.option("--limit", type=click.IntRange(min=1), help="Stop generating after this many events.")
@click.option("--start", type=float, help="Simulated start time, Unix seconds (default: now).")
@history_options(0.0, 0.0)
@click.option(
    "--record",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every event sent, one JSON line each.",
)
@click.option(
    "--frame-events",
    default="500",
    show_default=True,
    callback=lambda _context, _option, value: _frame_events(value),
    help="Events per frame: N, or FEWEST-MOST for a random count in between (1: bare objects).",
)
def simulate(host, port, seed, cps, speed, scenario, buffer, limit, start, backfill,
             quiet_history, record, frame_events) -> None:
    """Serve feed protocol v1 with realistic traffic and incidents.

    The bearer token the simulator demands, if any, is read from NOC_FEED_TOKEN.
    """
    import asyncio

    from console.feed import simulator

    token = os.environ.get("NOC_FEED_TOKEN")
    sim = simulator.Simulator(
        seed=seed,
        cps=cps,
        speed=speed,
        token=token,
        scenario=scenario,
        buffer=buffer,
        start=start,
        limit=limit,
        record=record,
        frame_events=frame_events,
        backfill=backfill,
        quiet_history=quiet_history,
    )

    async def serve() -> None:
        try:
            bound = await sim.start(host, port)
        except OSError as error:
            raise Failure(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
        click.echo(
            f"noc simulate: serving ws://{host}:{bound}/feed (seed {seed}, {scenario})", err=True
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await sim.stop()

    asyncio.run(serve())


@main.command()
@click.option(
    "--feed", "feed_url", help="Feed URL (default: feed.url in the config, or $NOC_FEED_URL)."
)
@db_option
@config_option
def ingest(feed_url, db_path, config_path) -> None:
    """Subscribe to the feed and store it, with no terminal (the daemon).

    The bearer token comes from NOC_FEED_TOKEN or feed.token in the config file, never argv.
    A feed that cannot be reached is retried for good; every change of state is logged.
    SIGTERM or SIGINT stores everything received, then exits 0. Exit 1: a mistake in the
    settings or the database file; exit 3: the store could not take the feed (the next start
    resumes from the last stored seq).
    """
    import asyncio

    from console.feed.client import FeedError
    from console.feed.service import IngestService, StoreFailed

    logging.getLogger().setLevel(logging.INFO)
    settings = load_settings(config_path)
    url = feed_url or settings.feed.url
    path = db_path or settings.db_path
    service_settings = ingest_settings(settings)
    engine = alert_engine(settings, path)

    async def run() -> None:
        try:
            service = IngestService(
                path, url, token=settings.feed.token, settings=service_settings, engine=engine
            )
        except FeedError as error:
            raise Failure(str(error)) from None
        try:
            await service.open()
        except StoreError as error:
            raise Failure(str(error)) from None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, service.stop)
        try:
            await service.run()
        except StoreFailed as failure:
            raise Failure(str(failure), EXIT_STORE_FAILED) from None
        except FeedError as error:
            raise Failure(str(error)) from None

    asyncio.run(run())


@main.command()
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--from", "time_from", help="Start, inclusive: Unix seconds or ISO 8601 (UTC).")
@click.option("--to", "time_to", help="End, exclusive: Unix seconds or ISO 8601 (UTC).")
@config_option
def report(db_path, as_json, time_from, time_to, config_path) -> None:
    """Totals per customer and carrier over a time range (default: everything stored)."""
    from store.queries import Reader

    settings = load_settings(config_path)
    path = db_path or settings.db_path
    start, end = parse_time(time_from, "--from"), parse_time(time_to, "--to")
    if start is not None and end is not None and end <= start:
        raise click.BadParameter("--to must be after --from", param_hint="--to")
    try:
        prepare(path, create=False)
        result = Reader(path).report(start, end)
    except StoreError as error:
        raise Failure(str(error)) from None
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(format_report(result))



@main.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; another than loopback lets other machines in.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--sessions", default=4, show_default=True, type=click.IntRange(1, 1000),
              help="Browser sessions at once (each one is a console process).")
@click.option("--allow-actions", is_flag=True,
              help="Let browser sessions act (disable accounts, acknowledge, edit rules); "
              "read-only otherwise.")
@config_option
def serve(db_path, host, port, sessions, allow_actions, config_path) -> None:
    """The console in a browser, as a viewer of the database (textual-serve).

    Every page and session needs the token: NOC_SERVE_TOKEN (16 characters or more), else a new
    one printed once with the URL to open. The database goes to each session in its
    environment, never on a command line.
    """
    from console.shell.serve import ConsoleServer, environment_for_sessions, new_token

    logging.getLogger().setLevel(logging.INFO)
    settings = load_settings(config_path)
    path = db_path or settings.db_path
    token = os.environ.get("NOC_SERVE_TOKEN", "")
    if token and len(token) < MIN_TOKEN_CHARS:
        raise Failure(f"NOC_SERVE_TOKEN is too short to guard the console: give it "
                      f"{MIN_TOKEN_CHARS} characters or more")
    try:
        prepare(path, create=False)
    except StoreError as error:
        raise Failure(str(error)) from None
    environment_for_sessions(str(path))
    server = ConsoleServer(token=token or new_token(), sessions=sessions,
                           read_only=not allow_actions, host=host, port=port)
    where = f"http://{host}:{port}/?token="
    click.echo(f"noc serve: open {where}{'<NOC_SERVE_TOKEN>' if token else server.token}",
               err=True)
    server.serve()


@main.group()
def bridge() -> None:
    """Bridges from real switches to noc's feed."""


bridge_config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The bridge's config file (default: $NOC_BRIDGE_CONFIG or the XDG config folder's "
    "noc/kamailio-bridge.toml).",
)


def load_bridge_settings(config_path: Path | None):
    from console.bridge import settings as bridge_settings

    try:
        return bridge_settings.load(config_path)
    except bridge_settings.BridgeConfigError as error:
        raise Failure(str(error)) from None


@bridge.command("kamailio")
@bridge_config_option
def bridge_kamailio(config_path) -> None:
    """Serve Kamailio's calls as noc's feed, and carry out noc's controls in Kamailio.

    Kamailio must run the configuration `noc bridge kamailio-cfg` writes. The bearer token noc
    must send comes from NOC_FEED_TOKEN or feed.token in the bridge's config file. SIGTERM or
    SIGINT stores everything received, then exits 0.
    """
    import asyncio

    from console.bridge.bridge import BridgeError, KamailioBridge

    logging.getLogger().setLevel(logging.INFO)  # as noc ingest: every change of state
    logging.getLogger("websockets").setLevel(logging.WARNING)  # the feed server says it better
    settings = load_bridge_settings(config_path)

    async def run() -> None:
        service = KamailioBridge(settings)
        try:
            await service.start()
        except BridgeError as error:
            raise Failure(str(error)) from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({stopping, service.failed}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        await service.stop()
        if service.failed.done():
            raise Failure(service.failed.result())

    asyncio.run(run())


@bridge.command("kamailio-cfg")
@bridge_config_option
def bridge_kamailio_cfg(config_path) -> None:
    """Print noc's Kamailio configuration, its addresses and ports from the bridge's config."""
    from console.bridge.kamailio import config_text

    click.echo(config_text(load_bridge_settings(config_path)), nl=False)


def existing_database(db_path: Path | str | None, settings: config_module.Settings
                      ) -> Path | str:
    path = db_path or settings.db_path
    try:
        prepare(path, create=False)
    except StoreError as error:
        raise Failure(str(error)) from None
    return path


@main.group()
def alerts() -> None:
    """Alert rules: import and export them as TOML, send a rule's test message."""


@alerts.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@db_option
@config_option
def alerts_import(file, db_path, config_path) -> None:
    """Add the rules of FILE ([[rule]] and [[template]] tables); same titles are replaced.

    All or nothing: a problem anywhere refuses the whole file, naming each rule and field."""
    from console.alerting import exchange

    path = existing_database(db_path, load_settings(config_path))
    try:
        result = exchange.import_text(
            path,
            file.read_text(encoding="utf-8"),
            now_ms=round(datetime.now(UTC).timestamp() * 1000),
        )
    except exchange.ImportInvalid as invalid:
        raise Failure(f"{file} was not imported:\n  " + "\n  ".join(invalid.problems)) from None
    except (StoreError, UnicodeDecodeError) as error:
        raise Failure(f"{file} was not imported: {error}") from None
    click.echo(
        f"{file}: {result.created} rules added, {result.replaced} replaced, "
        f"{result.templates} templates, {result.tags} tags",
        err=True,
    )


@alerts.command("export")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@db_option
@config_option
def alerts_export(file, db_path, config_path) -> None:
    """Write every rule and named template as TOML to FILE (default: standard output); the file
    is its owner's only (0600): recipients may be apprise URLs that hold a service's token."""
    from console.alerting import exchange
    from widgets.export_files import private_file

    text = exchange.export_text(existing_database(db_path, load_settings(config_path)))
    if file is None:
        click.echo(text, nl=False)
        return
    try:
        private_file(file)
        file.write_text(text, encoding="utf-8")
    except OSError as error:
        raise Failure(f"cannot write {file}: {error.strerror}") from None


@alerts.command("test")
@click.argument("title")
@db_option
@config_option
def alerts_test(title, db_path, config_path) -> None:
    """Queue the message of the rule TITLE to its recipients now, marked as a test."""
    from console.alerting.messages import send_test

    settings = load_settings(config_path)
    path = existing_database(db_path, settings)
    try:
        ids = send_test(
            path,
            title,
            now_ms=round(datetime.now(UTC).timestamp() * 1000),
            zone=settings.alerting.zone,
            by="noc alerts test",
        )
    except (LookupError, StoreError) as error:
        raise Failure(str(error)) from None
    where = (
        "the writer sends it now"
        if WriterLock.for_database(path).held_by_other()
        else "it is sent when a writer (noc ingest, or a console) runs"
    )
    click.echo(f"{len(ids)} test messages queued: {where}", err=True)


def format_report(result: dict) -> str:
    def number(value, digits=1):
        return "-" if value is None else f"{value:,.{digits}f}"

    def pdd_s(c):  # the JSON keeps milliseconds (pdd_ms); a person reads seconds
        return None if c['pdd_ms'] is None else c['pdd_ms'] / 1000

    lines = [
        f"From {_when(result['from'])} to {_when(result['to'])} (UTC); "
        f"last seq {result['last_seq']}, {len(result['gaps'])} gaps, "
        f"{result['quarantined']} quarantined",
        "",
        f"{'Customer':<20}{'Attempts':>10}{'ASR (%)':>8}{'ACD (s)':>8}{'Minutes':>11}{'PDD (s)':>9}"
        f"{'Revenue':>12}{'Profit':>11}",
    ]
    for name, c in result["customers"].items():
        label = printable(name)[:19]  # an id from the feed
        lines.append(
            f"{label:<20}{c['attempts']:>10,}{number(c['asr']):>8}{number(c['acd']):>8}"
            f"{number(c['minutes']):>11}{number(pdd_s(c)):>9}{number(c['revenue'], 2):>12}"
            f"{number(c['profit'], 2):>11}"
        )
    lines += [
        "",
        f"{'Carrier':<20}{'Attempts':>10}{'ASR (%)':>8}{'ACD (s)':>8}{'Minutes':>11}"
        f"{'PDD (s)':>9}{'Revenue':>12}{'Profit':>11}{'Consec.':>9}{'200':>9}{'404':>7}",
    ]
    for name, c in result["carriers"].items():
        label = printable(name)[:19]
        lines.append(
            f"{label:<20}{c['attempts']:>10,}{number(c['asr']):>8}{number(c['acd']):>8}"
            f"{number(c['minutes']):>11}{number(pdd_s(c)):>9}{number(c['revenue'], 2):>12}"
            f"{number(c['profit'], 2):>11}{c['consecutive_failures']:>9,}"
            f"{c['code_200']:>9,}{c['code_404']:>7,}"
        )
    return "\n".join(lines)


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


if __name__ == "__main__":
    sys.exit(main())

"""`noc serve`: the console in a browser (textual-serve), for a wall display or a colleague
without SSH. Each browser session is a console process of its own, a viewer of the database.

Guarded as a service on a network should be: it listens on 127.0.0.1 unless told otherwise;
every page and session needs the token (given once in the URL, then kept in a cookie that only
this site sends); a session's websocket must come from this site's own page (its Origin); the
sessions at once are capped (each is a process); and the console is read-only unless the
operator asks for actions. The database goes to each session in its environment, never its
command line (a postgresql:// URL may hold a password).
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import shlex
import sys
from urllib.parse import urlsplit

from aiohttp import web
from textual_serve.server import Server

log = logging.getLogger(__name__)

COOKIE = "noc_serve_token"
DEFAULT_SESSIONS = 4
PUBLIC_PATHS = ("/static/",)  # the terminal's script, styles and fonts: nothing of noc's


def new_token() -> str:
    return secrets.token_urlsafe(24)


def session_command(*, read_only: bool) -> str:
    """The console each session runs: always a viewer (a browser never becomes the writer)."""
    command = [sys.executable, "-m", "console.shell.cli", "--viewer"]
    if read_only:
        command.append("--read-only")
    return shlex.join(command)


class ConsoleServer(Server):
    """textual-serve's server with a token, an Origin check and a cap on sessions."""

    def __init__(self, *, token: str, sessions: int, read_only: bool, host: str,
                 port: int) -> None:
        super().__init__(session_command(read_only=read_only), host=host, port=port,
                         title="noc")
        self.token = token
        self.max_sessions = sessions
        self.sessions = 0
        # aiohttp's access log would write each page's URL, its token included: ours says less.
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._guard)
        return app

    def _allowed(self, request: web.Request) -> bool:
        given = request.query.get("token") or request.cookies.get(COOKIE) or ""
        return hmac.compare_digest(given.encode(), self.token.encode())

    @web.middleware
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:
        if request.path.startswith(PUBLIC_PATHS):
            return await handler(request)
        if not self._allowed(request):
            log.warning("serve: refused %s %s from %s: no valid token", request.method,
                        request.path, request.remote)
            raise web.HTTPForbidden(text="noc serve: open the URL with its token "
                                         "(printed when noc serve started)\n")
        if request.path == "/ws":
            origin = request.headers.get("Origin", "")
            if urlsplit(origin).netloc != request.host:
                log.warning("serve: refused a session from origin %r", origin)
                raise web.HTTPForbidden(text="noc serve: a session from another site\n")
            if self.sessions >= self.max_sessions:
                log.warning("serve: refused a session: %d open, the cap", self.sessions)
                raise web.HTTPServiceUnavailable(
                    text=f"noc serve: {self.sessions} sessions are open, the most allowed; "
                    "close one, or start noc serve with a higher --sessions\n")
            self.sessions += 1
            log.info("serve: session opened from %s (%d open)", request.remote, self.sessions)
            try:
                return await handler(request)
            finally:
                self.sessions -= 1
                log.info("serve: session closed (%d open)", self.sessions)
        response = await handler(request)
        if request.query.get("token"):  # kept for the page's own session and reloads
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict")
        return response

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        # The page's session goes back to the address the browser used (not 0.0.0.0).
        self.public_url = f"{request.scheme}://{request.host}"
        return await super().handle_index(request)

    async def on_startup(self, app: web.Application) -> None:
        log.info("serve: listening on %s (%d sessions at most, %s)",
                 self.public_url, self.max_sessions,
                 "read-only" if "--read-only" in self.command else "actions allowed")

    def initialize_logging(self) -> None:
        """noc's own log format (set by the command line), not textual-serve's."""


def environment_for_sessions(database: str) -> None:
    """What each session inherits: the database, and never the server's token."""
    os.environ["NOC_DB"] = database
    os.environ.pop("NOC_SERVE_TOKEN", None)

"""The command palette finds customers and carriers by name: type it, press Enter, you are there."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from screens.navigation import OpenAccount
from screens.safe_text import as_markup


class AccountCommands(Provider):
    """Every customer and carrier in the store, as 'Open customer NAME' / 'Open carrier NAME'."""

    async def startup(self) -> None:
        worker = self.app.run_worker(self.app.data.account_names, thread=True, group="palette")
        await worker.wait()
        self.accounts = worker.result or []

    def _commands(self):
        """The hits' texts are markup to the palette: the feed's names go in escaped."""
        for kind, account, name in self.accounts:
            label = name if name == account else f"{name} ({account})"
            yield (as_markup(f"Open {kind} {label}"),
                   partial(self.screen.post_message, OpenAccount(kind, account)))

    async def discover(self) -> Hits:
        for text, callback in self._commands():
            yield DiscoveryHit(text, callback)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, callback in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback)


class KeyCommands(Provider):
    """Every key of the screen the palette was opened on, as a command: nothing is key-only."""

    def _commands(self):
        seen = set()
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            if not binding.description or (binding.action, binding.description) in seen:
                continue
            seen.add((binding.action, binding.description))
            text = f"{binding.description} ({binding.key_display or key})"
            yield text, binding.tooltip, partial(self.app.run_action, binding.action, active.node)

    async def discover(self) -> Hits:
        for text, help_text, callback in self._commands():
            yield DiscoveryHit(text, callback, help=help_text or None)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, help_text, callback in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, help=help_text or None)

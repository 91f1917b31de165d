"""Kamailio as the bridge sees it: its shipped configuration, filled in; its JSON-RPC (provisioning
the accounts and routes into htables, penalties, ending calls); the numbers of its events.

The configuration (kamailio.cfg beside this module) keeps no account of its own: it reads the
htables `noc_acct` and `noc_route`, which `provision()` makes equal to the bridge's settings, and
refuses calls until `noc_state=>ready` is set.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources

from console.bridge.settings import BridgeSettings, host_port, source_key, split_address

RPC_TIMEOUT_S = 5.0
FOREVER = 2**31 - 1  # "disabled until" for a penalty with no end (the config's NOC_FOREVER)
# States of a Kamailio dialog (dlg.dlg_list): 3 answered (ACK pending), 4 answered.
ANSWERED_STATES = (3, 4)
ABSENT_KEY = ("key not found", "doesn't exist")  # how Kamailio's htable RPCs say it


class KamailioError(Exception):
    """Kamailio refused a request or could not be reached; str() says which and why."""


class KamailioUnreachable(KamailioError):
    pass


def config_text(settings: BridgeSettings) -> str:
    """The shipped kamailio.cfg with its parameters set from the bridge's [kamailio] section."""
    template = resources.files("console.bridge").joinpath("kamailio.cfg").read_text()
    k = settings.kamailio
    sip, rpc, evapi = host_port(k.sip), host_port(k.rpc), host_port(k.evapi)
    values = {
        "NOC_SIP_IP": sip[0], "NOC_SIP_PORT": sip[1],
        "NOC_RPC_IP": rpc[0], "NOC_RPC_PORT": rpc[1],
        "NOC_EVAPI_IP": evapi[0], "NOC_EVAPI_PORT": evapi[1],
        "NOC_REPLY_TIMEOUT_MS": round(k.reply_timeout * 1000),
        "NOC_RING_TIMEOUT_MS": round(k.ring_timeout * 1000),
        "NOC_CHILDREN": k.children,
    }
    for name, value in values.items():
        template, count = re.subn(rf'^#!substdef "!{name}!.*!g"$',
                                  f'#!substdef "!{name}!{value}!g"', template, flags=re.M)
        if count != 1:
            raise RuntimeError(f"kamailio.cfg has {count} definitions of {name}, not one")
    return template


def desired_tables(settings: BridgeSettings, penalties: dict[tuple[str, str], float | None],
                   ) -> dict[str, dict[str, int | str]]:
    """What the htables noc_acct and noc_route must hold: accounts, limits, routes, and who is
    disabled until when (`penalties`: (kind, id) -> until, None for no end)."""
    acct: dict[str, int | str] = {}
    for customer in settings.customer:
        for address in customer.addresses:
            acct[f"s:{source_key(address)}"] = customer.id
        if customer.user:
            acct[f"u:{customer.user}"] = customer.id
            acct[f"p:{customer.user}"] = customer.password
        if customer.channels is not None:
            acct[f"c:{customer.id}:channels"] = customer.channels
        if customer.cps is not None:
            acct[f"c:{customer.id}:cps"] = customer.cps
    for carrier in settings.carrier:
        acct[f"g:{carrier.id}:addr"] = _sip_address(carrier.address)
    for kind, accounts in (("customer", settings.customer), ("carrier", settings.carrier)):
        letter = "c" if kind == "customer" else "g"
        for account in accounts:
            until = disabled_until(account.enabled, penalties.get((kind, account.id), 0))
            if until:
                acct[f"{letter}:{account.id}:off"] = until
    route: dict[str, int | str] = {}
    for entry in settings.route:
        route[entry.prefix] = len(entry.carriers)
        for index, carrier in enumerate(entry.carriers, start=1):
            route[f"{entry.prefix}:{index}"] = carrier
    route["maxlen"] = max((len(r.prefix) for r in settings.route), default=0)
    return {"noc_acct": acct, "noc_route": route}


def disabled_until(enabled: bool, penalty_until: float | None) -> int:
    """The Unix second an account stays disabled until (0: enabled). A penalty's end is rounded
    up, so it never lifts early; no end at all, or `enabled = false`, is FOREVER."""
    if not enabled or penalty_until is None:
        return FOREVER
    return math.ceil(penalty_until) if penalty_until else 0


def _sip_address(address: str) -> str:
    """HOST:PORT for a SIP URI (an IPv6 host in brackets; port 5060 unless given)."""
    host, port = split_address(address)
    return f"[{host}]:{port or 5060}" if ":" in host else f"{host}:{port or 5060}"


@dataclass
class Dialog:
    h_entry: int
    h_id: int
    state: int
    cseq: str  # of the caller's INVITE


class KamailioRpc:
    """Kamailio's JSON-RPC over HTTP (xhttp + jsonrpcs), at http://RPC/RPC."""

    def __init__(self, address: str, timeout: float = RPC_TIMEOUT_S) -> None:
        self.url = f"http://{address}/RPC"
        self.timeout = timeout
        self._ids = 0

    async def call(self, method: str, *params: int | str) -> object:
        """The result of `method`; KamailioUnreachable if no answer, KamailioError if refused."""
        self._ids += 1
        body = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params),
                           "id": self._ids}).encode()
        return await asyncio.to_thread(self._post, method, body)

    def _post(self, method: str, body: bytes) -> object:
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise KamailioError(f"Kamailio refused {method}: {_rpc_error(error)}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise KamailioUnreachable(f"cannot reach Kamailio's JSON-RPC at {self.url} "
                                      f"({reason})") from None
        except ValueError:
            raise KamailioError(f"Kamailio answered {method} with something not JSON") from None
        if isinstance(answer, dict) and "error" in answer:
            raise KamailioError(f"Kamailio refused {method}: {answer['error']}")
        return answer.get("result") if isinstance(answer, dict) else None

    # Provisioning ---------------------------------------------------------------------------

    async def provision(self, tables: dict[str, dict[str, int | str]]) -> int:
        """Make the htables hold exactly `tables`, key by key (calls go on meanwhile); then mark
        Kamailio ready. Return how many keys changed."""
        changed = 0
        for table, wanted in tables.items():
            current = await self.dump(table)
            for key, value in wanted.items():
                if current.get(key) != value:
                    await self.set(table, key, value)
                    changed += 1
            for key in current.keys() - wanted.keys():
                await self.delete(table, key)
                changed += 1
        await self.set("noc_state", "ready", 1)
        return changed

    async def dump(self, table: str) -> dict[str, int | str]:
        result = await self.call("htable.dump", table)
        items: dict[str, int | str] = {}
        for slot in result if isinstance(result, list) else []:
            for item in slot.get("slot", []):
                items[item["name"]] = item["value"]
        return items

    async def set(self, table: str, key: str, value: int | str) -> None:
        if isinstance(value, int):
            await self.call("htable.seti", table, key, value)
        else:
            await self.call("htable.sets", table, key, value)

    async def call_unless_absent(self, method: str, *params: int | str) -> object:
        """`call`, but None where Kamailio answers that the key is not there (5.6.3 says
        "Key not found in htable." to htable.delete, "Key name doesn't exist in htable." to
        htable.get)."""
        try:
            return await self.call(method, *params)
        except KamailioUnreachable:
            raise
        except KamailioError as error:
            if not any(absent in str(error).lower() for absent in ABSENT_KEY):
                raise
            return None

    async def delete(self, table: str, key: str) -> None:
        """Delete a key; one that is not there is already what was asked."""
        await self.call_unless_absent("htable.delete", table, key)

    # Penalties and calls ----------------------------------------------------------------------

    async def set_disabled(self, kind: str, account: str, until: int) -> None:
        """Disable an account until that Unix second (0: enable it)."""
        key = f"{'c' if kind == 'customer' else 'g'}:{account}:off"
        if until:
            await self.set("noc_acct", key, until)
        else:
            await self.delete("noc_acct", key)

    async def dialog(self, call_id: str) -> Dialog | None:
        result = await self.call("dlg.dlg_list", call_id)
        dialogs = result if isinstance(result, list) else [result] if result else []
        found = [Dialog(d["h_entry"], d["h_id"], d["state"], str(d["caller"]["cseq"]))
                 for d in dialogs if isinstance(d, dict) and "h_entry" in d]
        live = [d for d in found if d.state < 5]
        return live[0] if live else None

    async def end_call(self, call_id: str) -> str | None:
        """End a call: an answered one with a BYE both ways, a ringing one by cancelling it
        towards the carrier (the caller gets 487); say why not if it cannot."""
        dialog = await self.dialog(call_id)
        if dialog is None:
            return f"Kamailio has no call {call_id} in progress"
        if dialog.state in ANSWERED_STATES:
            await self.call("dlg.end_dlg", dialog.h_entry, dialog.h_id)
            return None
        await self.set("noc_call", f"{call_id}:switch", 1)  # so: no failover, hung up by switch
        await self.call("tm.cancel", call_id, dialog.cseq)
        return None

    async def ending_of(self, call_id: str) -> str | None:
        """The event that ended the call (JSON, as evapi sent it, or the part of it that a
        bridge which knows the call needs), kept ten minutes; None if Kamailio has no record of
        its end (it goes on, or ended longer ago)."""
        result = await self.call_unless_absent("htable.get", "noc_end", call_id)
        value = result.get("item", {}).get("value") if isinstance(result, dict) else None
        return value if isinstance(value, str) else None

    async def event_count(self) -> tuple[int, int]:
        """(boot, k): when Kamailio started, and how many events it has sent since."""
        boot = await self.call("htable.get", "noc_state", "boot")
        count = await self.call("htable.get", "noc_state", "k")
        return _item_value(boot), _item_value(count)


def _item_value(result: object) -> int:
    if isinstance(result, dict) and isinstance(result.get("item"), dict):
        value = result["item"].get("value")
        if isinstance(value, int):
            return value
    raise KamailioError(f"unexpected answer from Kamailio's htable.get: {result!r}")


def _rpc_error(error: urllib.error.HTTPError) -> str:
    try:
        answer = json.loads(error.read())
        message = answer["error"]["message"]
    except (ValueError, KeyError, TypeError, OSError):
        message = error.reason
    return f"{message} (HTTP {error.code})"

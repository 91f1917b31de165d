"""Calls through a Kamailio running noc's configuration, from the test suite's SIP agents: they
play the customers and carriers of a bridge config file whose addresses are on this machine.

    python -m tests.sip_traffic --config bridge.toml [--cps 2] [--failing atlas] [--seconds 600]

Each customer with an address (IP:PORT) places calls to numbers of the configured routes (and a
few unrouted ones), a customer with a user and password authenticates; each carrier answers most
calls after ringing, some busy or unknown, with talk times of seconds to half a minute and now
and then a DTMF digit; `--failing` carriers answer 503 to everything. One line per call is
printed. Ctrl-C stops it, hanging up the calls still in progress.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
from pathlib import Path

from console.bridge.settings import BridgeSettings, load, split_address
from tests.sipkit import Answer, SipAgent


def carrier_plan(rng: random.Random, failing: bool):
    def plan(_number: str) -> Answer:
        if failing:
            return Answer(503, ring=None, answer_after=0.05)
        ring = rng.choice((180, 183))
        ring_after = rng.uniform(0.1, 1.5)
        outcome = rng.random()
        if outcome < 0.15:
            return Answer(486, ring, ring_after, ring_after + rng.uniform(0.5, 3))
        if outcome < 0.25:
            return Answer(404, None, answer_after=rng.uniform(0.05, 0.3))
        return Answer(200, ring, ring_after, ring_after + rng.uniform(0.5, 4),
                      talk=rng.uniform(3, 30) if rng.random() < 0.5 else None,
                      dtmf=rng.choice("0123456789*#") if rng.random() < 0.3 else "")
    return plan


async def place_calls(agent: SipAgent, proxy: str, settings: BridgeSettings, cps: float,
                      rng: random.Random, auth: tuple[str, str] | None,
                      calls: set[asyncio.Task]) -> None:
    prefixes = [route.prefix for route in settings.route] or ["44"]
    while True:
        await asyncio.sleep(rng.expovariate(cps))
        number = (rng.choice(prefixes) if rng.random() < 0.95 else "999") + \
            "".join(rng.choice("0123456789") for _ in range(8))
        task = asyncio.create_task(_one_call(agent, proxy, number, rng, auth))
        calls.add(task)
        task.add_done_callback(calls.discard)


async def _one_call(agent: SipAgent, proxy: str, number: str, rng: random.Random,
                    auth: tuple[str, str] | None) -> None:
    record = await agent.call(proxy, number, cli=f"1555{rng.randrange(10**7):07d}",
                              talk=rng.uniform(2, 20), auth=auth)
    talk = f"{record.duration:5.1f} s" if record.answered else ""
    print(f"{agent.name:>10} -> {number:<14} {record.code} {record.reason:<24} {talk}",
          flush=True)


async def main(config: Path, cps: float, failing: list[str], seconds: float | None) -> None:
    settings = load(config)
    rng = random.Random()
    proxy = settings.kamailio.sip
    agents: list[SipAgent] = []
    for carrier in settings.carrier:
        host, port = split_address(carrier.address)
        agents.append(await SipAgent(carrier.id, plan=carrier_plan(
            rng, carrier.id in failing)).start(int(port or 5060)))
        print(f"carrier {carrier.id} answering on {host}:{agents[-1].port}", flush=True)
    callers = []
    calls: set[asyncio.Task] = set()
    customers = [c for c in settings.customer if c.addresses or c.user]
    for customer in customers:
        port = next((split_address(a)[1] for a in customer.addresses if split_address(a)[1]),
                    None)
        agent = await SipAgent(customer.id).start(int(port) if port else 0)
        agents.append(agent)
        auth = (customer.user, customer.password) if customer.user and not port else None
        callers.append(place_calls(agent, proxy, settings, cps / len(customers), rng, auth,
                                   calls))
        print(f"customer {customer.id} calling from 127.0.0.1:{agent.port}", flush=True)
    try:
        async with asyncio.timeout(seconds):
            await asyncio.gather(*callers)
    except TimeoutError:
        pass
    finally:
        # Hang up what is still talking, so that Kamailio does not keep the channels busy.
        for agent in agents:
            for record in agent.records:
                record.hang_up()
        if calls:
            await asyncio.wait(calls, timeout=5)
        for agent in agents:
            await agent.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="the bridge's config file")
    parser.add_argument("--cps", type=float, default=1.0, help="new calls a second, in all")
    parser.add_argument("--failing", action="append", default=[],
                        help="a carrier that answers 503 to everything (repeatable)")
    parser.add_argument("--seconds", type=float, help="stop after this long")
    arguments = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(arguments.config, arguments.cps, arguments.failing, arguments.seconds))

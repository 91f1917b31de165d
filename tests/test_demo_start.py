"""`noc demo` starts its simulator in a process of its own (it makes the day of history on the
other core while the console starts): that process never outlives the demo, killed or not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from console.shell.cli import SERVING
from tests.feedkit import wait_until


def ended(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state == "Z"  # ended, not yet reaped by whoever inherited it


async def test_the_demo_simulator_ends_with_the_demo_even_killed(tmp_path):
    log = tmp_path / "simulator.log"
    demo = subprocess.Popen(
        [sys.executable, "-c", "import pathlib, sys, time\n"
         "from console.shell.cli import start_simulator\n"
         f"simulator = start_simulator(pathlib.Path({str(log)!r}), '--cps', '5')\n"
         "print(simulator.pid, flush=True)\n"
         "time.sleep(600)\n"], stdout=subprocess.PIPE, text=True)
    try:
        simulator = int(demo.stdout.readline())
        await wait_until(lambda: SERVING.search(log.read_text()), what="the simulator serving")
        assert not ended(simulator)
    finally:
        demo.kill()  # as kill -9 would: no clean-up of its own
        demo.wait()
        demo.stdout.close()
    await wait_until(lambda: ended(simulator), what="the simulator ended with the demo")

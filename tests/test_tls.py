"""wss:// works: a feed with a certificate from a private CA, trusted through feed.ca_file."""

from __future__ import annotations

import ssl

import pytest
import trustme

from console.feed.client import FeedClient, FeedUnreachable
from console.feed.simulator import Simulator


@pytest.fixture
async def tls_simulator(tmp_path):
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    simulator = Simulator(seed=3, speed=0, limit=50)
    port = await simulator.start("127.0.0.1", 0, ssl_context=context)
    yield f"wss://127.0.0.1:{port}/feed", str(ca_file)
    await simulator.stop()


async def test_a_wss_feed_is_read_with_its_ca(tls_simulator):
    url, ca_file = tls_simulator
    client = FeedClient(url, token=None, position=lambda: 0, ca_file=ca_file)
    ws = await client.connect_once()
    subscribe = await client.frames.get()
    assert subscribe.since == 0
    frames = [await ws.recv(decode=False) for _ in range(2)]  # a heartbeat may come first
    assert any(b'"seq":1,' in frame for frame in frames)
    await ws.close()


async def test_an_untrusted_certificate_says_which_setting_to_use(tls_simulator):
    url, _ = tls_simulator
    client = FeedClient(url, token=None, position=lambda: 0)
    with pytest.raises(FeedUnreachable, match="does not trust .*feed.ca_file"):
        await client.connect_once()

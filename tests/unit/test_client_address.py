"""Whom a request comes from: X-Forwarded-For is believed only from a proxy of ours."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import uvicorn

from services.kernel.client_address import client_address, trusted_networks
from services.kernel.startup import http_config

INGRESS = trusted_networks("10.42.0.0/16, 192.168.1.7")


@pytest.mark.parametrize(
    "peer, forwarded, caller",
    [
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not our proxy: the header is the caller's word
        ("127.0.0.1", "198.51.100.1", "127.0.0.1"),  # not even from this machine
        ("10.42.3.4", None, "10.42.3.4"),  # our proxy, no header: the proxy itself
        ("10.42.3.4", "203.0.113.9", "203.0.113.9"),  # our proxy says who connected to it
        ("10.42.3.4", "1.1.1.1, 2.2.2.2, 203.0.113.9", "203.0.113.9"),  # what the caller wrote before is ignored
        ("10.42.3.4", "1.1.1.1, 203.0.113.9, 192.168.1.7", "203.0.113.9"),  # two proxies of ours in a row
        ("10.42.3.4", "10.42.0.9, 192.168.1.7", "10.42.0.9"),  # only proxies: the farthest one
        ("10.42.3.4", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_the_caller_is_the_right_most_address_that_is_not_a_trusted_proxy(peer, forwarded, caller):
    assert client_address(peer, forwarded, INGRESS) == caller


def test_without_trusted_proxies_the_header_is_never_believed():
    assert client_address("127.0.0.1", "198.51.100.1", trusted_networks("")) == "127.0.0.1"


def test_a_trusted_proxy_that_is_not_an_address_is_named():
    with pytest.raises(ValueError, match="'ingress' is not an IP address or CIDR"):
        trusted_networks("10.0.0.0/8, ingress")


async def test_uvicorn_does_not_replace_the_peer_with_a_forwarded_address():
    # By default uvicorn believes X-Forwarded-For from 127.0.0.1: any local process could pick its address.
    async def echo_peer(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["client"][0].encode()})

    server = uvicorn.Server(http_config(echo_peer, "127.0.0.1", 0))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"http://127.0.0.1:{port}/", headers={"X-Forwarded-For": "198.51.100.1"})
        assert answer.text == "127.0.0.1"
    finally:
        server.should_exit = True
        await serving

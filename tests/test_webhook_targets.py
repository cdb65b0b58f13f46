"""Webhook targets in production mode: no address of this machine or its network is called,
whether written as a number in any form the C resolver reads or reached through a name, and the
delivery log says what went wrong in generic words only (it must not work as a port scanner).

Real HTTP receivers on 127.0.0.1; the only fake is a resolver at the sender's resolver port, which
maps `internal.example` to 127.0.0.1 (a name pointing inside, as DNS rebinding would make it)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from correspondence.adapters.webhooks import (
    AddressNotAllowed,
    GuardedResolver,
    HttpWebhookSender,
    WebhookSender,
)
from correspondence.auth.caller import Caller
from correspondence.events.schemas import SubscriptionRequestModel
from correspondence.events.use_cases import subscribe as subscribe_use_case
from correspondence.kit.errors import PlainError
from correspondence.services import Services
from tests import builders
from tests.attachment_fixtures import drain
from tests.conftest import INITIALIZE, Sender
from tests.webhook_receiver import Receiver, free_port

SUBSCRIPTIONS = "/events/api/v1/subscriptions"


class MapResolver(AbstractResolver):
    """Resolves the names it was given to the addresses it was given; nothing else."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.names:
            raise OSError(f"{host} is unknown")
        return [
            {"hostname": host, "host": self.names[host], "port": port, "family": socket.AF_INET,
             "proto": 0, "flags": socket.AI_NUMERICHOST}
        ]  # fmt: skip

    async def close(self) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    yield r
    r.stop()


@pytest.fixture
async def use_sender(services: Services) -> AsyncIterator[Callable[[WebhookSender], None]]:
    """Put a webhook sender at the services' port for one test (what production wiring would)."""
    previous = services.webhooks
    made: list[WebhookSender] = []

    def use(sender: WebhookSender) -> None:
        made.append(sender)
        services.webhooks = sender

    yield use
    services.webhooks = previous
    for sender in made:
        await sender.close()


def production_sender(resolver: AbstractResolver | None = None) -> HttpWebhookSender:
    return HttpWebhookSender(timeout_seconds=5, max_connections=4, guard=True, resolver=resolver)


async def deliveries_to(
    client: httpx.AsyncClient, services: Services, sender: Sender, url: str
) -> list[dict[str, Any]]:
    """Subscribe `url` (development mode lets any URL in), send one correspondence, run the
    worker, and return the subscription's delivery log."""
    response = await client.post(
        SUBSCRIPTIONS,
        json={"endPoint": url, "typeFilter": "correspondenceinitialized"},
        headers=sender.headers,
    )
    assert response.status_code == 201, response.text
    sid = response.json()["id"]
    body = builders.initialize_body(sender.resource_id, [builders.national_id()])
    assert (await client.post(INITIALIZE, json=body, headers=sender.headers)).status_code == 200
    await drain(services)
    log = await client.get(f"{SUBSCRIPTIONS}/{sid}/deliveries", headers=sender.headers)
    assert log.status_code == 200
    deliveries: list[dict[str, Any]] = log.json()["deliveries"]
    assert len(deliveries) == 1
    return deliveries


# --- at connect time -----------------------------------------------------------------------------


async def test_a_name_that_resolves_inside_reaches_the_receiver_only_in_development(
    client: httpx.AsyncClient,
    services: Services,
    sender: Sender,
    receiver: Receiver,
    use_sender: Callable[[WebhookSender], None],
) -> None:
    resolver = MapResolver({"internal.example": "127.0.0.1"})
    url = f"http://internal.example:{receiver.port}/hook"
    # The fake resolver does lead to the receiver: development mode delivers there.
    use_sender(HttpWebhookSender(timeout_seconds=5, max_connections=4, resolver=resolver))
    [delivered] = await deliveries_to(client, services, sender, url)
    assert delivered["status"] == "Delivered"
    assert len(receiver.received) == 1

    receiver.received.clear()
    use_sender(production_sender(MapResolver({"internal.example": "127.0.0.1"})))
    [refused] = await deliveries_to(client, services, sender, url)
    assert refused["status"] == "Pending" and refused["lastStatusCode"] is None
    assert refused["lastError"] == "address not allowed"
    assert receiver.received == []


async def test_the_guarded_resolver_keeps_only_the_public_addresses_of_a_name() -> None:
    """A name resolving to an inside and a public address (rebinding's favourite) is only ever
    connected to on the public one; a name resolving only inside is an error."""
    resolver = MapResolver({"mixed.example": "127.0.0.1", "inside.example": "10.0.0.5"})

    class Both(AbstractResolver):
        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[ResolveResult]:
            inside = await resolver.resolve(host, port, family)
            return [*inside, {**inside[0], "host": "93.184.216.34"}, {**inside[0], "host": "169.254.169.254"}]

        async def close(self) -> None:
            pass

    guarded = GuardedResolver(Both())
    assert [r["host"] for r in await guarded.resolve("mixed.example", 443)] == ["93.184.216.34"]
    with pytest.raises(AddressNotAllowed):
        await GuardedResolver(resolver).resolve("inside.example", 443)


async def test_production_does_not_deliver_to_localhost_through_the_system_resolver(
    client: httpx.AsyncClient,
    services: Services,
    sender: Sender,
    receiver: Receiver,
    use_sender: Callable[[WebhookSender], None],
) -> None:
    use_sender(production_sender())  # aiohttp's own resolver: /etc/hosts says 127.0.0.1
    [refused] = await deliveries_to(client, services, sender, f"http://localhost:{receiver.port}/hook")
    assert refused["lastError"] == "address not allowed"
    assert receiver.received == []


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "2130706433", "0x7f.0.0.1", "[::ffff:127.0.0.1]"])
async def test_production_does_not_deliver_to_an_inside_address_written_as_a_number(
    client: httpx.AsyncClient,
    services: Services,
    sender: Sender,
    receiver: Receiver,
    use_sender: Callable[[WebhookSender], None],
    host: str,
) -> None:
    use_sender(production_sender())
    [refused] = await deliveries_to(client, services, sender, f"http://{host}:{receiver.port}/hook")
    assert refused["lastError"] == "address not allowed"
    assert receiver.received == []


# --- what the delivery log says ------------------------------------------------------------------


async def test_the_log_says_connection_failed_for_a_refused_port_and_nothing_more(
    client: httpx.AsyncClient, services: Services, sender: Sender
) -> None:
    port = free_port()  # nobody listens
    [delivery] = await deliveries_to(client, services, sender, f"http://127.0.0.1:{port}/hook")
    assert delivery["lastError"] == "connection failed"
    assert delivery["lastStatusCode"] is None


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


async def test_the_log_says_timed_out_for_a_silent_endpoint(
    client: httpx.AsyncClient,
    services: Services,
    sender: Sender,
    silent_port: int,
    use_sender: Callable[[WebhookSender], None],
) -> None:
    use_sender(HttpWebhookSender(timeout_seconds=0.5, max_connections=4))
    [delivery] = await deliveries_to(client, services, sender, f"http://127.0.0.1:{silent_port}/hook")
    assert delivery["lastError"] == "timed out"


async def test_the_log_says_tls_handshake_failed_when_the_endpoint_speaks_no_tls(
    client: httpx.AsyncClient, services: Services, sender: Sender, receiver: Receiver
) -> None:
    [delivery] = await deliveries_to(client, services, sender, f"https://127.0.0.1:{receiver.port}/hook")
    assert delivery["lastError"] == "TLS handshake failed"
    assert receiver.received == []


async def test_the_log_shows_an_error_text_stored_before_as_connection_failed(
    client: httpx.AsyncClient, services: Services, sender: Sender, db: asyncpg.Connection
) -> None:
    [delivery] = await deliveries_to(client, services, sender, f"http://127.0.0.1:{free_port()}/hook")
    await db.execute(
        "UPDATE event_deliveries SET last_error = $2 WHERE id = $1",
        delivery["id"],
        "ClientConnectorError: Cannot connect to host 10.0.0.5:22 ssl:default [Connection reset by peer]",
    )
    sid = (await client.get(SUBSCRIPTIONS, headers=sender.headers)).json()["subscriptions"][-1]["id"]
    log = (await client.get(f"{SUBSCRIPTIONS}/{sid}/deliveries", headers=sender.headers)).json()
    [shown] = [d for d in log["deliveries"] if d["id"] == delivery["id"]]
    assert shown["lastError"] == "connection failed"


# --- at subscribe time ---------------------------------------------------------------------------


def _caller(org: str) -> Caller:
    return Caller(
        issuer="test", kind="altinn", scopes=frozenset({"altinn:correspondence.write"}),
        org=org, pid=None, expires=0.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    "end_point",
    [
        "https://127.1/hook",
        "https://2130706433/hook",
        "https://0/hook",
        "https://0x7f.1/hook",
        "https://0x7f.0.0.1/hook",
        "https://017700000001/hook",
        "https://0x7f000001/hook",
        "https://127.0.0.1./hook",
        "https://10.1/hook",  # 10.0.0.1
        "https://3232235777/hook",  # 192.168.1.1
        "https://[::127.0.0.1]/hook",
        "https://[64:ff9b::a00:1]/hook",  # NAT64 of 10.0.0.1
        "https://224.0.0.1/hook",
        "https://127.0.0.256/hook",  # numeric-looking, no address
        "https://ｌｏｃａｌｈｏｓｔ/hook",  # localhost after IDNA mapping
        "https://127。0。0。1/hook",  # ideographic full stops
    ],
)
async def test_production_refuses_inside_addresses_in_every_numeric_form(
    services: Services, sender: Sender, end_point: str
) -> None:
    request = SubscriptionRequestModel.model_validate({"endPoint": end_point})
    with pytest.raises(PlainError) as refused:
        await subscribe_use_case.subscribe(
            services.pool, caller=_caller(sender.org), request=request, production=True
        )
    assert refused.value.status == 400

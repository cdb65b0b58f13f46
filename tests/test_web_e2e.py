"""End to end: headless Chromium (Debian's /usr/bin/chromium, driven by Python Playwright) against a
real `correspondence serve` process on 127.0.0.1 (issue 6, "Done when").

The service runs on the test session's database and data directory, so the `dev_issuer` fixture's
tokens are the server's own; correspondences are sent through the API and published by the
server's worker. With CORRESPONDENCE_WEB_SCREENSHOTS=<dir> the tests also save the README's
screenshots (inbox.png, message.png, sent.png, sent-item.png) there.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright import sync_api

from correspondence.auth.tokens import DevIssuer
from tests import builders

CHROMIUM = Path("/usr/bin/chromium")
# `make test` installs it; a developer's run without it skips, CI's never does.
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (make chromium)",
)

API = "/correspondence/api/v1"
INITIALIZE = f"{API}/correspondence"
SENDER_SCOPES = "altinn:correspondence.write altinn:serviceowner"
READ = "altinn:correspondence.read"
PDF = b"%PDF-1.4\n% web e2e attachment\n"
SHOTS = os.environ.get("CORRESPONDENCE_WEB_SCREENSHOTS")


@dataclass
class Scenario:
    base_url: str
    owner_org: str
    resource_id: str
    person: str
    other_person: str
    cid: str  # the person's new correspondence: attachment, confirmation, notification
    title_word: str
    attachment_id: str
    side_cid: str  # the same request's correspondence to `other_person`


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cli(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "correspondence", *args], env=env, check=True, capture_output=True)


def _wait_healthy(base_url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"`correspondence serve` exited with {server.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(base_url + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"`correspondence serve` did not become healthy:\n{log.read_text()}")


def _wait_published(client: httpx.Client, ids: list[str]) -> None:
    deadline = time.monotonic() + 60
    pending = set(ids)
    while pending and time.monotonic() < deadline:
        pending = {c for c in pending if client.get(f"{INITIALIZE}/{c}").json()["status"] != "Published"}
        if pending:
            time.sleep(0.2)
    assert not pending, f"not published by the server's worker: {sorted(pending)}"


def _send(client: httpx.Client, resource_id: str, recipients: list[str], **kw: Any) -> list[str]:
    attachments = kw.pop("attachments", None)
    body = builders.initialize_body(resource_id, recipients, **kw)
    if attachments:
        body["existingAttachments"] = attachments
    response = client.post(INITIALIZE, json=body)
    assert response.status_code == 200, response.text
    return [c["correspondenceId"] for c in response.json()["correspondences"]]


def _content(title: str, summary: str, body: str) -> dict[str, Any]:
    return {
        "content": {"language": "nb", "messageTitle": title, "messageSummary": summary, "messageBody": body}
    }


@pytest.fixture(scope="module")
def scenario(database_url: str, data_dir: Path, dev_issuer: DevIssuer) -> Iterator[Scenario]:
    env = {
        **os.environ,
        "CORRESPONDENCE_MODE": "development",
        "CORRESPONDENCE_DATABASE_URL": database_url,
        "CORRESPONDENCE_DATA_DIR": str(data_dir),
        "CORRESPONDENCE_LOG_LEVEL": "warning",
        "CORRESPONDENCE_WORKER_POLL_SECONDS": "0.1",
    }
    owner, other_owner = builders.org_number(), builders.org_number()
    resource, other_resource = f"web-e2e-{owner}", f"web-e2e-{other_owner}"
    person, other_person = builders.national_id(), builders.national_id()
    _cli(env, "resource", "add", resource, "--owner", owner, "--title", "Vedtak og brev")
    _cli(env, "resource", "add", other_resource, "--owner", other_owner, "--title", "Eiendomsskatt")
    _cli(env, "party", "set", owner, "--name", "Testdirektoratet")
    _cli(env, "party", "set", other_owner, "--name", "Eksempel kommune")
    _cli(env, "contact", "set", person, "--email", "kari@example.no")
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = data_dir / f"web-e2e-server-{port}.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "correspondence", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(base_url, server, log)
        sender = {"Authorization": "Bearer " + dev_issuer.mint(scope=SENDER_SCOPES, org=owner)}
        other = {"Authorization": "Bearer " + dev_issuer.mint(scope=SENDER_SCOPES, org=other_owner)}
        with httpx.Client(base_url=base_url, headers=sender, timeout=10) as client:
            meta = {"resourceId": resource, "fileName": "vedtak.pdf", "sendersReference": "doc-1"}
            meta["checksum"] = hashlib.md5(PDF).hexdigest()
            attachment_id = str(client.post(f"{API}/attachment", json=meta).json())
            uploaded = client.post(
                f"{API}/attachment/{attachment_id}/upload",
                content=PDF,
                headers={"Content-Type": "application/octet-stream"},
            )
            assert uploaded.status_code == 200, uploaded.text
            # Older mail first, so the new one is at the top of the inbox.
            history = [
                (
                    "Svar på søknad om parkeringstillatelse",
                    "Søknaden er innvilget.",
                    "Se vedlagt **vedtak**.",
                ),
                ("Kvittering for innsendt skjema", "Vi har mottatt skjemaet ditt.", "Takk for innsendingen."),
            ]
            old: list[str] = []
            for title, summary, body in history:
                old += _send(client, resource, [person], **_content(title, summary, body))
            with httpx.Client(base_url=base_url, headers=other, timeout=10) as other_client:
                old += _send(
                    other_client,
                    other_resource,
                    [person],
                    **_content(
                        "Eiendomsskatt 2026", "Skatteseddel for eiendommen din.", "Beløp: 4 200 kroner."
                    ),
                )
                _wait_published(other_client, old[-1:])
            body = (
                "## Vedtak i saken din\n\nVi har behandlet saken og gir deg **medhold**.\n\n"
                "| Post | Beløp |\n|---|---|\n| Gebyr | 0 kr |\n\nSe også [veiledningen](https://example.no/veileder)."
            )
            cid, side_cid = _send(
                client,
                resource,
                [person, other_person],
                attachments=[attachment_id],
                isConfirmationNeeded=True,
                dueDateTime=builders.future(14),
                notification_block=builders.notification(notificationChannel="Email", sendReminder=False),
                replyOptions=[{"linkURL": "https://example.no/svar", "linkText": "Svar på vedtaket"}],
                externalReferences=[{"referenceValue": "2026/4711", "referenceType": "Generic"}],
                **_content(
                    "Vedtak om byggetillatelse", "Søknaden din om byggetillatelse er behandlet.", body
                ),
            )
            _wait_published(client, [*old[:-1], cid, side_cid])
        yield Scenario(
            base_url, owner, resource, person, other_person, cid, "byggetillatelse", attachment_id, side_cid
        )
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(
        locale="en-GB", accept_downloads=True, viewport={"width": 1280, "height": 860}
    )
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def _shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / name), full_page=True)


def _sign_in_as_person(page: Any, base_url: str, pid: str) -> None:
    page.goto(base_url + "/")
    assert "/signin" in page.url
    page.get_by_label("National identity number (11 digits)").fill(pid)
    page.locator("form:has(input[name=pid])").get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/inbox")


def test_a_person_reads_downloads_confirms_finds_and_archives(page: Any, scenario: Scenario) -> None:
    expect = sync_api.expect
    _sign_in_as_person(page, scenario.base_url, scenario.person)
    row = page.locator(f'tr[data-id="{scenario.cid}"]')
    expect(row).to_have_class("unread")
    expect(row).to_contain_text("Vedtak om byggetillatelse")
    expect(row).to_contain_text("Testdirektoratet")
    _shot(page, "inbox.png")

    row.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Vedtak om byggetillatelse")
    expect(page.get_by_test_id("body").locator("strong")).to_have_text("medhold")
    expect(page.get_by_test_id("status")).to_have_text("Read")
    expect(page.get_by_role("link", name="Svar på vedtaket")).to_have_attribute(
        "href", "https://example.no/svar"
    )
    expect(page.get_by_text("2026/4711")).to_be_visible()
    _shot(page, "message.png")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="vedtak.pdf").click()
    download = download_info.value
    assert download.suggested_filename == "vedtak.pdf"
    assert Path(download.path()).read_bytes() == PDF

    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_contain_text("The message is confirmed.")
    expect(page.get_by_role("button", name="Confirm")).to_have_count(0)

    page.get_by_role("link", name="Back to the inbox").click()
    expect(row).to_have_class("read")
    page.get_by_label("Text").fill(scenario.title_word)
    page.get_by_role("button", name="Search").click()
    expect(page.locator("tr[data-id]")).to_have_count(1)
    expect(row).to_be_visible()
    page.get_by_label("Text").fill("parkeringstillatelse")
    page.get_by_role("button", name="Search").click()
    expect(row).to_have_count(0)

    page.goto(f"{scenario.base_url}/inbox/{scenario.cid}")
    page.get_by_role("button", name="Archive").click()
    page.wait_for_url("**/inbox")
    expect(page.get_by_role("status")).to_contain_text("The message is archived.")
    expect(row).to_have_count(0)
    page.get_by_label("Status").select_option("Archived")
    page.get_by_role("button", name="Search").click()
    expect(row).to_be_visible()


def test_the_service_owner_sees_the_recipients_statuses_and_the_notification(
    page: Any, scenario: Scenario, dev_issuer: DevIssuer
) -> None:
    expect = sync_api.expect
    person = {"Authorization": "Bearer " + dev_issuer.mint(scope=READ, pid=scenario.person)}
    read = httpx.get(f"{scenario.base_url}{INITIALIZE}/{scenario.cid}/content", headers=person, timeout=10)
    assert read.status_code == 200  # read through the API, whatever the other test did
    page.goto(scenario.base_url + "/signin")
    page.get_by_label("Organisation number (9 digits)").fill(scenario.owner_org)
    page.locator("form:has(input[name=org])").get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/sent")
    mine = page.locator(f'tr[data-id="{scenario.cid}"]')
    side = page.locator(f'tr[data-id="{scenario.side_cid}"]')
    # Read here, or Archived after the person's test above has run.
    expect(mine.get_by_test_id("sent-status")).to_have_text(re.compile(r"^(Read|Archived)$"))
    expect(side.get_by_test_id("sent-status")).to_have_text("Published")
    expect(mine).to_contain_text("Success")
    expect(side).to_contain_text("MissingContact")
    _shot(page, "sent.png")

    mine.get_by_role("link").click()
    expect(page.get_by_test_id("order-row")).to_contain_text("kari@example.no")
    expect(page.get_by_test_id("order-row")).to_contain_text("Success")
    history = page.get_by_test_id("history-row")
    expect(history.filter(has_text="Published")).to_have_count(1)
    expect(history.filter(has_text="Read")).not_to_have_count(0)
    _shot(page, "sent-item.png")


def test_a_second_person_cannot_open_the_first_persons_correspondence_by_url(
    page: Any, scenario: Scenario
) -> None:
    expect = sync_api.expect
    _sign_in_as_person(page, scenario.base_url, scenario.other_person)
    expect(page.locator(f'tr[data-id="{scenario.cid}"]')).to_have_count(0)
    response = page.goto(f"{scenario.base_url}/inbox/{scenario.cid}")
    assert response is not None and response.status == 403
    expect(page.get_by_test_id("problem")).to_be_visible()
    expect(page.get_by_text("Vedtak i saken din")).to_have_count(0)
    download = page.goto(f"{scenario.base_url}/inbox/{scenario.cid}/attachments/{scenario.attachment_id}")
    assert download is not None and download.status == 403

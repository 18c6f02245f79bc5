"""The console in a real browser (Chromium through Playwright), end to end: a responder's day
with one incident, and what its client sees of it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, FilePayload, Locator, Page, expect

from tests.browser import SCREENSHOTS, chromium, keep_pages_of_failure
from tests.conftest import on_backend
from tests.console_client import PASSWORD, with_password
from tests.follow_up_client import Crew, new_crew
from tests.gateway_client import Api, eventually
from tests.lifecycle_client import finish_containment
from tests.review_client import pdf_text, signed_off

__all__ = ["chromium"]  # the fixture, used by name

WAIT_MS = 30_000


@pytest.fixture
def crew(api: Api) -> Crew:
    crew = new_crew(api, f"Browser {uuid.uuid4().hex[:6]}")
    for person in (crew.manager, crew.contact, crew.participant):
        with_password(api, person)
    return crew


@pytest.fixture
def pages(chromium: Browser, request: pytest.FixtureRequest) -> Iterator[list[Page]]:
    """Pages the test opens, each in a browser context of its own (its own cookies)."""
    opened: list[Page] = []
    yield opened
    keep_pages_of_failure(request, opened)
    for page in opened:
        page.context.close()


def open_page(chromium: Browser, pages: list[Page], api: Api) -> Page:
    context = chromium.new_context(base_url=api.platform.gateway_url)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    pages.append(page)
    return page


def sign_in(page: Page, email: str) -> None:
    page.goto("/console/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/console$"))


def notice(page: Page) -> Locator:
    """What the page says was done."""
    return page.locator("p.notice")


def screenshot(page: Page, name: str) -> None:
    """For the README: the browser tests take its pictures (var/screenshots/)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


# On SQLite alone: the page is the API's, whatever the database (which the API's own tests
# cover on both).
@on_backend("sqlite", "platform")
def test_a_responders_day_with_one_incident_and_what_its_client_sees(
    api: Api, crew: Crew, chromium: Browser, pages: list[Page]
) -> None:
    page = open_page(chromium, pages, api)
    sign_in(page, crew.manager.email)
    board = page.locator("#board-rows")
    expect(page.locator("#live-status")).to_have_text("Live")

    # A report posted through the API appears on the board without a reload.
    title = f"VPN gateway down {uuid.uuid4().hex[:6]}"
    created = api.report(crew.client, title=title, impact="extensive", urgency="medium")
    assert created.status_code == 201, created.text
    incident_id, reference = created.json()["id"], created.json()["reference"]
    # References are per client: the row is found by the incident's id.
    row = board.locator(f"tr[data-incident='{incident_id}']")
    expect(row.get_by_role("link", name=reference)).to_be_visible()
    expect(row).to_contain_text("P2")
    eventually(lambda: api.incident(api.admin, incident_id)["status"] == "triaged")
    expect(row).to_contain_text("not acknowledged")
    screenshot(page, "board")

    row.get_by_role("link", name=reference).click()
    expect(page.locator("#incident-status")).to_have_text("triaged")
    # Refused commands are shown, greyed out, with the reason.
    expect(page.get_by_role("button", name="Resolve")).to_be_disabled()
    # From the keyboard, as anyone may work the page: focus the command, press Enter.
    page.get_by_role("button", name="Acknowledge").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#incident-status")).to_have_text("acknowledged")

    page.get_by_label("Commander").select_option(label=participant_name(api, crew))
    page.get_by_role("button", name="Assign commander").click()
    expect(notice(page)).to_have_text("Commander assigned.")

    containment = page.get_by_role("checkbox", name=re.compile(r"mark done$")).first
    task = (containment.get_attribute("aria-label") or "").removesuffix("mark done")
    containment.click()
    ticked = page.get_by_role("checkbox", name=task + "mark not done")
    expect(ticked).to_have_attribute("aria-checked", "true")

    log = b"deny 10.0.0.7\n" * 500
    upload: FilePayload = {"name": "firewall.log", "mimeType": "text/plain", "buffer": log}
    page.locator("#evidence-file").set_input_files(files=[upload])
    page.get_by_label("Description").fill("Firewall log around the outage")
    page.get_by_role("button", name="Upload").click()
    expect(notice(page)).to_have_text("Evidence added: firewall.log.")
    page.get_by_role("button", name="Verify firewall.log").click()
    expect(notice(page)).to_have_text("Evidence verified: intact.")

    client_words = f"We have restored VPN access {uuid.uuid4().hex[:6]}"
    internal_words = f"INTERNAL-ONLY suspect the contractor {uuid.uuid4().hex[:6]}"
    page.get_by_label("Audience").select_option("client")
    page.get_by_label("Update", exact=True).fill(client_words)
    page.get_by_role("button", name="Post update").click()
    expect(notice(page)).to_have_text("Update posted.")
    page.get_by_label("Internal note").fill(internal_words)
    page.get_by_role("button", name="Add note").click()
    expect(notice(page)).to_have_text("Note added.")
    screenshot(page, "incident")
    assert fits_a_phone(page)

    # The client portal: the client's contact sees the update, never the note.
    portal = open_page(chromium, pages, api)
    sign_in(portal, crew.contact.email)
    portal_row = portal.locator(f"#board-rows tr[data-incident='{incident_id}']")
    expect(portal_row.get_by_role("link", name=reference)).to_be_visible()
    portal_row.get_by_role("link", name=reference).click()
    expect(portal.get_by_text(client_words).first).to_be_visible()
    screenshot(portal, "client-portal")
    assert fits_a_phone(portal)
    # The client adds evidence of its own, and downloads the report, where no note is either.
    proof: FilePayload = {"name": "user-report.txt", "mimeType": "text/plain", "buffer": b"x"}
    portal.locator("#evidence-file").set_input_files(files=[proof])
    portal.get_by_role("button", name="Upload").click()
    expect(notice(portal)).to_have_text("Evidence added: user-report.txt.")
    with portal.expect_download() as download:
        portal.get_by_role("link", name="Download the incident report (PDF)").click()
    report = Path(download.value.path()).read_bytes()
    assert client_words in pdf_text(report)
    # Every page a client can open, searched for what only the firm may read.
    for path in ("/console", f"/console/incidents/{incident_id}", "/console/report"):
        portal.goto(path)
        for internal in ("INTERNAL-ONLY", crew.manager.email, "internal"):
            assert internal not in portal.content(), (path, internal)
    assert "INTERNAL-ONLY" not in pdf_text(report)

    # Contain and resolve from the page; the review signed off (through the API), close.
    finish_containment(api, crew.manager, incident_id)
    page.reload()
    page.get_by_label("Contain summary").fill("VPN appliance isolated")
    page.get_by_role("button", name="Contain").click()
    expect(page.locator("#incident-status")).to_have_text("contained")
    page.get_by_label("Resolve summary").fill("Configuration restored from the vendor")
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("#incident-status")).to_have_text("resolved")
    page.get_by_label("Closing summary").fill("Restored; backups now nightly.")
    page.get_by_role("button", name="Close").click()
    expect(page.get_by_role("heading", name="Closing waits for")).to_be_visible()
    expect(page.locator("#gates-h + ul")).to_contain_text("pir_signed_off")
    signed_off(api, crew, incident_id)
    page.goto(f"/console/incidents/{incident_id}")  # not a reload: that would send the form again
    expect(page.locator("#pir-h + p")).to_contain_text("signed off")
    expect(page.get_by_text("Custody log").first).to_be_visible()
    page.get_by_label("Closing summary").fill("Restored; backups now nightly.")
    page.get_by_role("button", name="Close").click()
    expect(page.locator("#incident-status")).to_have_text("closed")


def fits_a_phone(page: Page) -> bool:
    """Whether the page, at a phone's width, needs no sideways scrolling (its own wide tables
    scroll in their boxes). Leaves the page at that width."""
    page.set_viewport_size({"width": 390, "height": 844})
    fits: bool = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.set_viewport_size({"width": 1280, "height": 900})
    return fits


def participant_name(api: Api, crew: Crew) -> str:
    person = api.http.get(f"/v1/people/{crew.participant.person_id}", headers=api.admin.headers)
    name: str = person.json()["name"]
    return name

"""One-click acknowledge links against the real processes and a real SMTP server: a P1 page
carries a signed link in its text and HTML; opening it changes nothing; its button acknowledges
as the paged person, once; an altered, expired or foreign link, a deactivated person and a
person outside the client's wall each get a page that says so."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message as EmailMessage

import httpx
import pytest

from firebreak import ack_links
from firebreak.launcher import Platform
from tests.gateway_client import Api, Person, Tenant, eventually
from tests.lifecycle_client import ok, run
from tests.mail import Mailbox

LINK = re.compile(r"https?://[^\s\"'<>]+/v1/ack/[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Paged:
    """A P1 of a client of its own, paged to one responder, and that page's email."""

    api: Api
    client: Tenant
    person: Person
    incident_id: str
    reference: str
    text: str
    html: str

    @property
    def link(self) -> str:
        [link] = set(LINK.findall(self.text))
        return link


def _parts(message: EmailMessage) -> dict[str, str]:
    parts = {}
    for part in message.walk():
        if part.get_content_type() in ("text/plain", "text/html"):
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            parts[part.get_content_type()] = payload.decode(part.get_content_charset() or "utf-8")
    return parts


def page_someone(platform: Platform, box: Mailbox) -> Paged:
    api = Api(platform)
    client = api.new_client()
    person = api.new_person("responder")
    policy = {
        "name": "Acme P1",
        "client_id": client.id,
        "priorities": ["P1"],
        # One step, long enough that no second one comes during a test.
        "steps": [{"targets": [{"person_id": person.person_id}], "after_minutes": 30}],
    }
    ok(api.http.post("/v1/escalation-policies", json=policy, headers=api.admin.headers))
    created = ok(api.report(client, impact="extensive", urgency="critical"))
    [message] = eventually(lambda: box.to(person.email))
    parts = _parts(message)
    return Paged(
        api,
        client,
        person,
        created["id"],
        created["reference"],
        parts["text/plain"],
        parts["text/html"],
    )


def _status(paged: Paged) -> str:
    return str(paged.api.incident(paged.api.admin, paged.incident_id)["status"])


def _types(paged: Paged) -> list[str]:
    return [entry["type"] for entry in paged.api.timeline(paged.api.admin, paged.incident_id)]


def _anonymous() -> httpx.Client:
    """No API key, no cookies: a browser that followed the link."""
    return httpx.Client(timeout=10)


def _html(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    # Self-contained: nothing is loaded from anywhere.
    assert "<script" not in response.text and "src=" not in response.text
    return response.text


def test_a_page_link_acknowledges_as_the_paged_person_once(
    mail_platform: Platform, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    paged = page_someone(mail_platform, box)
    link = paged.link
    # On the gateway's public URL (by default http://127.0.0.1:<gateway port>), in both parts.
    assert link.startswith(f"{mail_platform.gateway_url}/v1/ack/")
    assert f'href="{link}"' in paged.html
    assert "works once" in paged.text

    browser = _anonymous()
    # Opening the link (as a mail scanner would) shows a button and changes nothing.
    shown = _html(browser.get(link), 200)
    assert paged.reference in shown
    assert '<form method="post">' in shown and "Acknowledge</button>" in shown
    assert paged.person.role.title() in shown  # "acknowledging as Responder …"
    assert _status(paged) == "triaged"
    assert "incident.acknowledged" not in _types(paged)

    done = _html(browser.post(link), 200)
    assert f"{paged.reference} is acknowledged" in done
    assert "You are its incident commander." in done
    incident = paged.api.incident(paged.api.admin, paged.incident_id)
    assert incident["status"] == "acknowledged"
    assert incident["roles"]["incident_commander"]["id"] == paged.person.person_id
    [acknowledged] = [
        entry
        for entry in paged.api.timeline(paged.api.admin, paged.incident_id)
        if entry["type"] == "incident.acknowledged"
    ]
    assert acknowledged["actor"]["id"] == paged.person.person_id
    assert acknowledged["actor"]["kind"] == "responder"
    eventually(lambda: "escalation.stopped" in _types(paged))

    # Once: a second click, or opening it again, says so and changes nothing.
    again = _html(browser.post(link), 410)
    assert "already used" in again
    assert "already used" in _html(browser.get(link), 410)
    assert _types(paged).count("incident.acknowledged") == 1


def test_a_link_to_an_incident_someone_took_on_says_so(
    mail_platform: Platform, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    paged = page_someone(mail_platform, box)
    manager = paged.api.new_person("manager")
    ok(run(paged.api, manager, paged.incident_id, "acknowledge"))
    browser = _anonymous()
    shown = _html(browser.get(paged.link), 200)
    assert "already acknowledged" in shown and "<form" not in shown
    answered = _html(browser.post(paged.link), 200)  # not an error
    assert "already acknowledged" in answered
    assert "Manager" in answered  # the commander, by name
    incident = paged.api.incident(paged.api.admin, paged.incident_id)
    assert incident["roles"]["incident_commander"]["id"] == manager.person_id
    assert _types(paged).count("incident.acknowledged") == 1


def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


def test_altered_foreign_and_garbage_links_are_not_valid(
    mail_platform: Platform, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    paged = page_someone(mail_platform, box)
    base, token = paged.link.split("/v1/ack/")
    payload, signature = token.split(".")
    claim = ack_links.verify(token, secret=mail_platform.link_secret, now=datetime.now(UTC))
    foreign = ack_links.sign(claim, secret="another platform's secret, long enough")
    altered = [
        f"{_flip(payload, 10)}.{signature}",
        f"{payload}.{_flip(signature, 5)}",
        f"{payload}.{signature}x",
        payload,
        foreign,
        "not-a-token",
        "a/b/c",
        "",
    ]
    browser = _anonymous()
    for token in altered:
        for method in ("GET", "POST"):
            page = _html(browser.request(method, f"{base}/v1/ack/{token}"), 404)
            assert "not valid" in page, token
            # Nothing about the incident the genuine token names.
            assert paged.reference not in page and paged.incident_id not in page
            assert paged.person.person_id not in page
    assert _status(paged) == "triaged"
    # The genuine link still works after all that.
    _html(browser.post(paged.link), 200)
    assert _status(paged) == "acknowledged"


def test_an_expired_link_says_so_and_changes_nothing(
    mail_platform: Platform, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    paged = page_someone(mail_platform, box)
    genuine = ack_links.verify(
        paged.link.split("/v1/ack/")[1],
        secret=mail_platform.link_secret,
        now=datetime.now(UTC),
    )
    past = datetime(2020, 1, 1, tzinfo=UTC)
    expired = ack_links.sign(
        ack_links.AckClaim(
            incident_id=genuine.incident_id,
            client_id=genuine.client_id,
            person_id=genuine.person_id,
            delivery_id=genuine.delivery_id,
            expires_at=past,
        ),
        secret=mail_platform.link_secret,
    )
    browser = _anonymous()
    url = f"{mail_platform.gateway_url}/v1/ack/{expired}"
    for method in ("GET", "POST"):
        page = _html(browser.request(method, url), 410)
        assert "link has expired; acknowledge in the console or with your key" in page
        assert paged.reference not in page
    assert _status(paged) == "triaged"


def test_a_deactivated_persons_link_is_refused(
    mail_platform: Platform, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    paged = page_someone(mail_platform, box)
    deactivated = paged.api.http.patch(
        f"/v1/people/{paged.person.person_id}",
        json={"active": False},
        headers=paged.api.admin.headers,
    )
    ok(deactivated)
    browser = _anonymous()
    for method in ("GET", "POST"):
        assert "is deactivated" in _html(browser.request(method, paged.link), 403)
    assert _status(paged) == "triaged"
    assert "incident.acknowledged" not in _types(paged)


def test_a_link_of_someone_outside_the_clients_wall_is_refused(
    mail_platform: Platform, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    paged = page_someone(mail_platform, box)
    elsewhere = paged.api.new_client("Elsewhere LLP")
    walled = paged.api.new_person("responder", clients=[elsewhere.id])
    # A genuine link, made as notify makes them, for a person the wall keeps out.
    maker = ack_links.LinkMaker(
        secret=mail_platform.link_secret,
        public_url=mail_platform.gateway_url,
        lifetime=timedelta(minutes=60),
    )
    link = maker.url(
        incident_id=paged.incident_id,
        client_id=paged.client.id,
        person_id=walled.person_id,
        delivery_id="00000000-0000-4000-8000-000000000001",
        now=datetime.now(UTC),
    )
    browser = _anonymous()
    for method in ("GET", "POST"):
        assert "ethical wall" in _html(browser.request(method, link), 403)
    assert _status(paged) == "triaged"


# --- The token format on its own (firebreak/ack_links.py) -------------------------------------

SECRET = "s" * 32
CLAIM = ack_links.AckClaim(
    incident_id="a3c1e6a2-0000-4000-8000-000000000001",
    client_id="b3c1e6a2-0000-4000-8000-000000000002",
    person_id="c3c1e6a2-0000-4000-8000-000000000003",
    delivery_id="d3c1e6a2-0000-4000-8000-000000000004",
    expires_at=datetime(2030, 1, 1, 12, 0, tzinfo=UTC),
)
BEFORE = datetime(2030, 1, 1, 11, 59, 59, tzinfo=UTC)


def test_a_token_round_trips_and_is_url_safe() -> None:
    token = ack_links.sign(CLAIM, secret=SECRET)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}", token)
    assert ack_links.verify(token, secret=SECRET, now=BEFORE) == CLAIM


def test_a_token_expires_at_its_time() -> None:
    token = ack_links.sign(CLAIM, secret=SECRET)
    with pytest.raises(ack_links.ExpiredLink):
        ack_links.verify(token, secret=SECRET, now=CLAIM.expires_at)


@pytest.mark.parametrize(
    "change",
    [
        lambda token: token.replace(".", ".x", 1),
        lambda token: _flip(token, 3),
        lambda token: _flip(token, len(token) - 2),
        lambda token: token + "=",
        lambda token: token.split(".")[0],
        lambda token: "x" * 2000,
    ],
    ids=["signature", "payload", "signature-end", "padding", "unsigned", "long"],
)
def test_any_change_makes_a_token_invalid(change: Callable[[str], str]) -> None:
    token = ack_links.sign(CLAIM, secret=SECRET)
    with pytest.raises(ack_links.InvalidLink):
        ack_links.verify(change(token), secret=SECRET, now=BEFORE)


def test_a_token_is_only_valid_with_its_secret_and_a_known_version() -> None:
    token = ack_links.sign(CLAIM, secret=SECRET)
    for secret in ("t" * 32, None, ""):
        with pytest.raises(ack_links.InvalidLink):
            ack_links.verify(token, secret=secret, now=BEFORE)
    # A well-signed payload of another version is refused too.
    payload = base64.urlsafe_b64encode(b'{"v":2}').decode().rstrip("=")
    signature = hmac.new(
        SECRET.encode(), ack_links.SIGNING_CONTEXT + payload.encode(), hashlib.sha256
    ).digest()
    forged = f"{payload}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"
    with pytest.raises(ack_links.InvalidLink):
        ack_links.verify(forged, secret=SECRET, now=BEFORE)
    with pytest.raises(ValueError, match="at least 32"):
        ack_links.sign(CLAIM, secret="short")

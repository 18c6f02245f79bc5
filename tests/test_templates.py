"""Messages come from Jinja2 templates in its sandbox: the defaults, a firm's overrides, HTML
autoescaped, and client templates that cannot show a client an internal field."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2.exceptions import UndefinedError

from services.notify.templating import DEFAULT_DIR, TemplateRefused, Templates

INCIDENT = {
    "id": "0b7c9d2e-1111-4222-8333-944445555666",
    "reference": "ACME-0042",
    "title": "Payroll <portal> & VPN down",
    "priority": "P1",
    "status": "acknowledged",
    "commander": "Ada Commander",
    "communications_lead": "Lin Lead",
}
UPDATE = {
    "id": "u-1",
    "audience": "client",
    "body": "Restored for <b>all</b> users & partners.\nNext update at 14:00.",
    "author": "Lin Lead",
    "posted_at": "2026-11-30 12:00 UTC",
}
FIRM = {"name": "Hopper & Partners"}


def override(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(text)
    return directory


def test_every_message_has_a_subject_and_text_template() -> None:
    names = {path.name for path in DEFAULT_DIR.glob("*.j2")}
    families = {name.split(".")[0] for name in names}
    assert {"page", "status_update_client", "status_update_internal", "update_reminder"} <= families
    for family in families:
        assert {f"{family}.subject.j2", f"{family}.txt.j2"} <= names, family


def test_a_client_update_renders_its_body_escaped_in_html_and_verbatim_in_text() -> None:
    message = Templates.load().render(
        "status_update_client", incident=INCIDENT, update=UPDATE, firm=FIRM
    )
    assert message.subject == "[ACME-0042] Update on Payroll <portal> & VPN down"
    assert UPDATE["body"] in message.text
    assert "Hopper & Partners" in message.text
    assert message.html is not None
    assert "&lt;b&gt;all&lt;/b&gt; users &amp; partners" in message.html
    assert "<b>all</b>" not in message.html
    assert "Hopper &amp; Partners" in message.html


def test_a_client_template_receives_only_client_safe_fields() -> None:
    templates = Templates.load()
    # Whatever the caller passes, a client template sees only the client-safe fields.
    rendered = templates.render(
        "status_update_client",
        incident=INCIDENT | {"summary": "INTERNAL SUMMARY"},
        update=UPDATE,
        firm=FIRM,
        ack_url="https://firebreak.example/v1/ack/secret",
    )
    for part in (rendered.subject, rendered.text, rendered.html or ""):
        assert "Ada Commander" not in part and "INTERNAL" not in part and "secret" not in part


def test_a_page_carries_its_acknowledge_link_in_both_parts() -> None:
    message = Templates.load().render(
        "page",
        incident=INCIDENT,
        person={"id": "p", "name": "Ann On-Call"},
        kind="page",
        ack_url="https://firebreak.example/v1/ack/a.b-c",
        ack_until="2026-11-30 13:00",
    )
    assert message.subject == "[P1] ACME-0042 Payroll <portal> & VPN down"
    assert "Acknowledge as Ann On-Call with one click: https://firebreak.example/v1/ack/a.b-c" in (
        message.text
    )
    assert message.html is not None
    assert 'href="https://firebreak.example/v1/ack/a.b-c"' in message.html
    assert "Payroll &lt;portal&gt; &amp; VPN down" in message.html


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ("{{ incident.commander }}", "incident.commander"),
        ("{{ incident['communications_lead'] }}", "incident.communications_lead"),
        ("{% if ack_url %}{{ ack_url }}{% endif %}", "ack_url"),
        ("{{ update.author }}", "update.author"),
        ("{% set whole = incident %}{{ whole.commander }}", "incident (as a whole"),
        ("{{ incident | attr('commander') }}", "incident (as a whole"),
        ("{{ incident[field] }}", "incident[…]"),
        ("{% include 'page.txt.j2' %}", "may not include"),
    ],
)
def test_a_client_template_referring_to_an_internal_field_is_refused_when_loaded(
    tmp_path: Path, source: str, named: str
) -> None:
    firm_dir = override(tmp_path / "firm", "status_update_client.txt.j2", f"Dear client, {source}")
    with pytest.raises(TemplateRefused) as refused:
        Templates.load(firm_dir)
    assert "status_update_client.txt.j2" in str(refused.value)
    assert named in str(refused.value)


def test_a_firms_valid_override_is_used_and_the_other_defaults_stay(tmp_path: Path) -> None:
    firm_dir = override(
        tmp_path / "firm",
        "status_update_client.subject.j2",
        "{{ firm.name }}: {{ incident.reference }} is {{ incident.status }}",
    )
    templates = Templates.load(firm_dir)
    message = templates.render("status_update_client", incident=INCIDENT, update=UPDATE, firm=FIRM)
    assert message.subject == "Hopper & Partners: ACME-0042 is acknowledged"
    assert UPDATE["body"] in message.text  # the default text template
    # An internal template may use internal fields.
    firm_dir = override(
        tmp_path / "firm", "status_update_internal.txt.j2", "{{ incident.commander }}"
    )
    internal = Templates.load(firm_dir).render(
        "status_update_internal", incident=INCIDENT, update=UPDATE, firm=FIRM
    )
    assert internal.text == "Ada Commander"


def test_an_override_that_overrides_nothing_is_refused(tmp_path: Path) -> None:
    firm_dir = override(tmp_path / "firm", "status_update_clinet.txt.j2", "{{ update.body }}")
    with pytest.raises(
        TemplateRefused, match=r"status_update_clinet\.txt\.j2 .*overrides no default"
    ):
        Templates.load(firm_dir)


def test_a_template_that_does_not_parse_is_refused_naming_it(tmp_path: Path) -> None:
    firm_dir = override(tmp_path / "firm", "page.txt.j2", "{% if ack_url %}unclosed")
    with pytest.raises(TemplateRefused, match=r"page\.txt\.j2 .*line 1"):
        Templates.load(firm_dir)


def test_templates_run_in_the_sandbox_and_naming_what_a_message_lacks_is_refused(
    tmp_path: Path,
) -> None:
    """Each message's templates are rendered once at load with an example of what notify gives
    them: an unsafe attribute, or a field the message does not have, stops notify there."""
    firm_dir = override(tmp_path / "firm", "update_reminder.txt.j2", "{{ person.__class__ }}")
    with pytest.raises(TemplateRefused, match=r"update_reminder\.txt\.j2 .*unsafe"):
        Templates.load(firm_dir)
    firm_dir = override(tmp_path / "firm", "page.subject.j2", "{{ incident.titel }}")
    with pytest.raises(TemplateRefused, match=r"page\.subject\.j2 .*titel.*incident\.title"):
        Templates.load(firm_dir)
    # At render time, too, what a template names must be there.
    with pytest.raises(UndefinedError):
        Templates.load().render("page", incident=INCIDENT, person={"name": "Ann"}, kind="page")

"""Reading a report by email (services/intake/mail_reports.py) from the bytes a sending server
delivers: what is taken from a message, and what makes one refused, without trusting its
headers' encodings."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from services.intake.mail_reports import MAX_ATTACHMENTS, Refused, may_report, read_report


def raw(headers: str, body: bytes = b"The export failed.\r\n") -> bytes:
    return headers.replace("\n", "\r\n").encode("latin-1") + b"\r\n" + body


def test_a_plain_message_makes_a_report() -> None:
    report = read_report(
        raw(
            "From: =?utf-8?q?Zo=C3=AB_Ops?= <Zoe@Client.Example>\n"
            "Subject: =?utf-8?b?UGF5cm9sbCDinIg=?= export\n"
            "   failed\n"
            "Message-ID: <m-1@client.example>\n"
            "Date: Mon, 02 Mar 2026 10:00:00 +0100\n"
        )
    )
    assert (report.author_name, report.author_address) == ("Zoë Ops", "zoe@client.example")
    assert report.subject == "Payroll ✈ export failed"  # unfolded, one line
    assert report.body == "The export failed."
    assert report.message_id == report.dedup_key == "m-1@client.example"
    assert report.sent_at == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert report.attachments == []


def test_a_message_without_a_message_id_is_known_by_its_author_and_subject() -> None:
    first = read_report(raw("From: a@client.example\nSubject: Disk full\n"))
    again = read_report(raw("From: a@client.example\nSubject: Disk   full\n", b"Other words"))
    other = read_report(raw("From: b@client.example\nSubject: Disk full\n"))
    assert first.dedup_key == again.dedup_key != other.dedup_key
    assert first.dedup_key.startswith("email-sha256:")
    overlong = read_report(raw(f"From: a@client.example\nMessage-ID: <{'x' * 300}@y>\n"))
    assert overlong.dedup_key.startswith("email-sha256:") and len(overlong.dedup_key) < 255


@pytest.mark.parametrize(
    ("headers", "reply"),
    [
        ("Subject: no author\n", "550 5.7.1 A report needs one author"),
        ("From: a@client.example, b@client.example\n", "550 5.7.1 A report needs one author"),
        ("From: a@client.example\nFrom: b@client.example\n", "550 5.7.1"),
        ("From: someone\n", "550 5.7.1"),
        ("From: root@localhost\n", "550 5.1.7"),  # no report can name it as its reporter
        ("From: a@client.example\nSubject: bell\x07\n", "550 5.6.0 The Subject holds"),
        ("From: a@client.example\nSubject: =?utf-8?q?x=E2=80=AEy?=\n", "U+202E"),  # RTL override
        ("From: =?utf-8?q?Ev=1Bil?= <a@client.example>\n", "550 5.6.0 The From name holds"),
        # Undeclared 8-bit bytes that are not UTF-8, where no one can tell what they say.
        ("From: Caf\xe9 <a@client.example>\n", "550 5.6.0 The From name is neither encoded"),
    ],
)
def test_a_message_whose_headers_cannot_be_trusted_is_refused(headers: str, reply: str) -> None:
    with pytest.raises(Refused) as refused:
        read_report(raw(headers))
    assert refused.value.reply.startswith(reply) or reply in refused.value.reply


def test_undeclared_utf8_in_headers_is_read_as_utf8() -> None:
    report = read_report(
        "From: Zoë <zoe@client.example>\r\nSubject: Zoë's export\r\n\r\nbody".encode()
    )
    assert (report.author_name, report.subject) == ("Zoë", "Zoë's export")


def test_the_body_keeps_its_text_and_loses_its_hidden_characters() -> None:
    report = read_report(
        raw(
            "From: a@client.example\nContent-Type: text/plain; charset=x-no-such-charset\n",
            "Line one\r\nred \x1b[31malert\x1b[0m\r\n\tindented caf\xc3\xa9\r\n".encode("latin-1"),
        )
    )
    assert report.body == "Line one\nred \ufffd[31malert\ufffd[0m\n\tindented café"
    # A charset that is no text encoding is read as UTF-8 too.
    rot = read_report(raw("From: a@client.example\nContent-Type: text/plain; charset=rot13\n"))
    assert rot.body == "The export failed."


def test_an_html_body_is_made_text() -> None:
    message = EmailMessage()
    message["From"] = "a@client.example"
    message.set_content(
        "<html><head><title>t</title><style>p{}</style></head><body>"
        "<h1>Outage</h1><p>VPN&nbsp;down<br>since 09:12</p><ul><li>London</li><li>Leeds</li>"
        "</ul><script>steal()</script></body></html>",
        subtype="html",
    )
    report = read_report(bytes(message))
    assert report.body == "Outage\n\nVPN down\nsince 09:12\n\nLondon\n\nLeeds"


def test_attachments_are_kept_with_safe_names() -> None:
    message = EmailMessage()
    message["From"] = "a@client.example"
    message.set_content("See attached.")
    message.add_attachment(b"%PDF", maintype="application", subtype="pdf", filename="C:\\x\\a.pdf")
    message.add_attachment(b"log", maintype="text", subtype="plain", filename="../we\x07ird?.log")
    message.add_attachment(b"\x00\x01", maintype="application", subtype="octet-stream")
    forwarded = EmailMessage()
    forwarded["From"] = "b@client.example"
    forwarded.set_content("the original")
    message.add_attachment(forwarded)
    report = read_report(bytes(message))
    assert [item.filename for item in report.attachments] == [
        "a.pdf",
        "we_ird_.log",
        "attachment-3",
        "attachment-4",
    ]
    assert report.attachments[0].content == b"%PDF"
    assert report.attachments[0].content_type == "application/pdf"
    assert b"the original" in report.attachments[3].content
    assert report.body == "See attached."


def test_too_many_attachments_are_refused() -> None:
    message = EmailMessage()
    message["From"] = "a@client.example"
    message.set_content("Many files.")
    for number in range(MAX_ATTACHMENTS + 1):
        message.add_attachment(b"x", maintype="text", subtype="plain", filename=f"{number}.txt")
    with pytest.raises(Refused, match=r"^552 5\.3\.4"):
        read_report(bytes(message))


def test_a_date_ahead_of_our_clock_is_taken_as_now() -> None:
    report = read_report(raw("From: a@client.example\nDate: Fri, 01 Jan 2100 00:00:00 +0000\n"))
    assert report.sent_at is not None and report.sent_at <= datetime.now(UTC)


def test_senders_are_allowed_by_address_or_whole_domain() -> None:
    allowed = ["ops@client.example", "@partner.example"]
    assert may_report("ops@client.example", allowed)
    assert not may_report("dev@client.example", allowed)
    assert may_report("anyone@partner.example", allowed)
    assert not may_report("a@eu.partner.example", allowed)  # a subdomain is another domain

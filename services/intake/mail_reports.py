"""A report by email (issue 14 §5), read from the message as it came: its author, subject,
text, Message-ID and attachments.

Nothing in a message is trusted. It is parsed with the standard library's `email` package
(policy `default`); a header whose bytes are not valid UTF-8 and declare no encoding, or that
holds a control or format character (an escape sequence, a bidirectional override), is refused,
since the subject becomes the incident's title and the author its reporter; in the body such
characters become U+FFFD, so that a report is not lost for a stray byte. A charset Python does
not know (or that is no text encoding) is read as UTF-8, replacing what is not. Anything the
parser cannot make sense of is a refusal with a permanent SMTP reply, never an error.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from html.parser import HTMLParser
from typing import Any

from services.intake.service import EMAIL

log = logging.getLogger(__name__)

MAX_ATTACHMENTS = 20
MAX_FILENAME = 255
MAX_DEDUP_KEY = 255
MAX_SUMMARY = 1024
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
# The zero-width non-joiner and joiner: real text (Persian, Indic scripts, emoji) needs them.
JOINERS = "\u200c\u200d"
CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}")
UNREADABLE = "550 5.6.0 The message cannot be read as an email; it was not taken"


class Refused(Exception):
    """The message is not taken: `reply` is the SMTP reply that says why."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class MailReport:
    author_name: str
    author_address: str  # lower-cased
    subject: str  # one line; empty if the message had none
    body: str  # its text, or its HTML made text
    message_id: str  # as sent, without <>; empty if none
    dedup_key: str  # the Message-ID, else a hash of author and subject
    sent_at: datetime | None  # its Date:, never later than now
    attachments: list[Attachment]


def read_report(data: bytes) -> MailReport:
    """The report a message makes; Refused with the reply that says why it is not taken."""
    try:
        return _read(BytesParser(policy=policy.default).parsebytes(data))
    except Refused:
        raise
    except Exception:  # the parser's or a part's own failure on malformed input
        log.warning("a message could not be parsed", exc_info=True)
        raise Refused(UNREADABLE) from None


def may_report(address: str, allowed_senders: list[str]) -> bool:
    """Whether the address, or its whole domain ("@example.com"), is allowed (exactly: a
    subdomain is another domain)."""
    domain = address.rpartition("@")[2]
    return address in allowed_senders or f"@{domain}" in allowed_senders


def _read(message: Message) -> MailReport:
    if not isinstance(message, EmailMessage):  # policy.default always makes one
        raise Refused(UNREADABLE)
    name, address = _author(message)
    subject = " ".join(_header_text(message, "Subject").split())
    message_id = _header_text(message, "Message-ID").strip().strip("<>").strip()
    return MailReport(
        author_name=name,
        author_address=address,
        subject=subject[:MAX_SUMMARY],
        body=_body(message),
        message_id=message_id,
        dedup_key=_dedup_key(message_id, address, subject),
        sent_at=_sent_at(message),
        attachments=_attachments(message),
    )


def _author(message: EmailMessage) -> tuple[str, str]:
    """The name and address of the one author the From: header names."""
    headers = message.get_all("From") or []
    addresses: tuple[Any, ...] = getattr(headers[0], "addresses", ()) if len(headers) == 1 else ()
    if len(addresses) != 1 or not addresses[0].username or not addresses[0].domain:
        raise Refused("550 5.7.1 A report needs one author: a From: header with one address")
    address = _checked(addresses[0].addr_spec, "From address").lower()
    if len(address) > 320 or not EMAIL.match(address):
        raise Refused(f"550 5.1.7 The From address {address!r} is not one a report can name")
    name = " ".join(_checked(addresses[0].display_name, "From name").split())
    return (name[:200] or address), address


def _header_text(message: EmailMessage, name: str) -> str:
    value = message.get(name)
    return "" if value is None else _checked(str(value), name)


def _checked(text: str, field: str) -> str:
    """The header's text; Refused if its bytes were not UTF-8 (and it declared no encoding)
    or it holds a control or format character."""
    if any("\ud800" <= character <= "\udfff" for character in text):
        # Undeclared 8-bit bytes, which the parser keeps as surrogates: UTF-8 or nothing.
        try:
            text = text.encode("utf-8", "surrogateescape").decode("utf-8")
        except UnicodeError:
            raise Refused(
                f"550 5.6.0 The {field} is neither encoded (RFC 2047) nor UTF-8; it was not taken"
            ) from None
    for character in text:
        if character not in "\t" + JOINERS and unicodedata.category(character) in HIDDEN_CATEGORIES:
            raise Refused(
                f"550 5.6.0 The {field} holds the control or format character "
                f"U+{ord(character):04X}; Firebreak refuses them"
            )
    return text


def _visible(text: str) -> str:
    """Body text with its line breaks as "\\n" and any other control or format character
    (or a surrogate) as U+FFFD."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(
        "\ufffd"
        if character not in "\t\n" + JOINERS
        and unicodedata.category(character) in HIDDEN_CATEGORIES
        else character
        for character in text
    )


def _decoded(part: Message) -> str:
    """A text part's content, in its declared charset if Python knows it as a text encoding,
    else as UTF-8; what does not decode becomes U+FFFD."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    if charset in ("us-ascii", "ascii"):
        charset = "utf-8"  # a superset: undeclared 8-bit text is most often UTF-8
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # unknown, or no text encoding ("base64", "rot13")
        return payload.decode("utf-8", errors="replace")


def _body(message: EmailMessage) -> str:
    """The text/plain body; else the text/html one, made text."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    text = _decoded(part)
    if part.get_content_subtype() == "html":
        text = html_text(text)
    return _visible(text).strip()


class _HtmlText(HTMLParser):
    """The text of an HTML body: its words, a line break at each block, no scripts or styles."""

    BLOCKS = frozenset(
        {"p", "div", "br", "li", "tr", "table", "ul", "ol", "pre", "blockquote", "hr"}
        | {f"h{level}" for level in range(1, 7)}
    )
    HIDDEN = frozenset({"script", "style", "head", "title", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self._hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def html_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip()


def _dedup_key(message_id: str, address: str, subject: str) -> str:
    """The Message-ID, so that the same mail sent again joins its incident; without a usable
    one, a hash of its author and subject (or of the Message-ID, when it is too long)."""
    if message_id and len(message_id) <= MAX_DEDUP_KEY and message_id.isprintable():
        return message_id
    source = message_id or f"{address}\n{subject}"
    return "email-sha256:" + hashlib.sha256(source.encode()).hexdigest()


def _sent_at(message: EmailMessage) -> datetime | None:
    header = message.get("Date")
    moment = getattr(header, "datetime", None)
    if not isinstance(moment, datetime):
        return None
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    # A sender's clock ahead of ours says nothing about when the problem was seen.
    return min(moment.astimezone(UTC), datetime.now(UTC))


def _attachments(message: EmailMessage) -> list[Attachment]:
    found = []
    for index, part in enumerate(message.iter_attachments(), start=1):
        if index > MAX_ATTACHMENTS:
            raise Refused(f"552 5.3.4 At most {MAX_ATTACHMENTS} attachments to a report")
        content = part.get_payload(decode=True)
        if not isinstance(content, bytes):
            # An attached message (message/rfc822) or multipart: kept as it was sent.
            inner = part.get_payload()
            content = (
                b"".join(item.as_bytes() for item in inner if isinstance(item, Message))
                if isinstance(inner, list)
                else part.as_bytes()
            )
        found.append(
            Attachment(
                filename=_filename(part.get_filename() or "", index),
                content_type=_content_type(part),
                content=content,
            )
        )
    return found


def _content_type(part: Message) -> str:
    """The declared type if it is one (RFC 6838's characters), else application/octet-stream;
    only ever shown, never used to serve the content."""
    declared = part.get_content_type()
    return declared if CONTENT_TYPE.fullmatch(declared) else "application/octet-stream"


def _filename(name: str, index: int) -> str:
    """The sender's file name without any folder, its control characters and those Windows
    refuses replaced; `attachment-<n>` when nothing is left."""
    try:  # undeclared 8-bit bytes, kept as surrogates: UTF-8 if they are
        name = name.encode("utf-8", "surrogateescape").decode("utf-8", errors="replace")
    except UnicodeError:
        pass  # other surrogates: replaced below
    name = name.replace("\\", "/").rpartition("/")[2]
    name = "".join(
        "_"
        if character in '<>:"|?*' or unicodedata.category(character) in HIDDEN_CATEGORIES
        else character
        for character in name
    )
    return name.strip(" .")[:MAX_FILENAME] or f"attachment-{index}"

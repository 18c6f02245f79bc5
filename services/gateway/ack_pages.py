"""The small HTML pages of one-click acknowledge links: read by a person who clicked a link in
a page, never by a program. Self-contained (no scripts, styles or images from anywhere), every
value escaped, never cached, never framed (a framed button could be clicked by trickery), and
never followed by a Referer: the URL is a credential."""

from __future__ import annotations

import html

from fastapi.responses import HTMLResponse

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}

_STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:34rem;"
    "margin:3rem auto;padding:0 1rem;color:#1d2939;line-height:1.5}"
    "h1{font-size:1.4rem}"
    "button{font-size:1rem;padding:.6rem 1.4rem;border:0;border-radius:4px;"
    "background:#b42318;color:#fff;font-weight:600;cursor:pointer}"
    ".muted{color:#667085;font-size:.9rem}"
)


def page(
    status: int, title: str, paragraphs: list[str], *, button: str | None = None
) -> HTMLResponse:
    """A page of plain-text `paragraphs` (escaped here), with a button that POSTs to the page's
    own URL when `button` names it."""
    body = "".join(f"<p>{html.escape(text)}</p>" for text in paragraphs)
    if button is not None:
        # No action: the form posts to the URL the page was shown at, whatever proxy is in front.
        body += f'<form method="post"><button type="submit">{html.escape(button)}</button></form>'
    document = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow">'
        f"<title>{html.escape(title)} · Firebreak</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}"
        '<p class="muted">Firebreak incident response</p></body></html>'
    )
    return HTMLResponse(document, status_code=status, headers=HEADERS)


def not_valid() -> HTMLResponse:
    # Says nothing about what the token names: it may not be ours at all.
    return page(
        404,
        "This link is not valid",
        [
            "This acknowledge link is not valid: it may have been cut short or changed on the "
            "way. Acknowledge in the console or with your key.",
        ],
    )


def expired() -> HTMLResponse:
    return page(
        410,
        "This link has expired",
        ["This link has expired; acknowledge in the console or with your key."],
    )


def already_used() -> HTMLResponse:
    return page(
        410,
        "This link was already used",
        [
            "This link was already used: each acknowledge link works once. See the incident "
            "in the console, or acknowledge with your key.",
        ],
    )


def refused(reason: str) -> HTMLResponse:
    return page(403, "You cannot acknowledge with this link", [reason])


def unavailable() -> HTMLResponse:
    return page(
        503,
        "Please try again",
        [
            "Firebreak could not complete this just now. The link still works: try again in "
            "a moment.",
        ],
    )

"""What every console page shares: its templates, who is signed in, forms and their CSRF check.

The session cookie is HttpOnly and SameSite=Strict, scoped to /console (the API never reads
it: the API takes bearer tokens only, so no cross-site form can spend a session on it), and
Secure when the request came over HTTPS (behind a TLS-terminating proxy, uvicorn's
--proxy-headers makes that visible). Every form carries its session's form token, compared in
constant time; the sign-in form, before any session, carries a token matched against a cookie
of its own (double submit).
"""

from __future__ import annotations

import secrets
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from services.gateway.backends import Backends
from services.gateway.console.api import ConsoleApi, console_api
from services.gateway.dependencies import console_session
from services.gateway.permissions import Principal

SESSION_COOKIE = "firebreak_session"
SIGN_IN_COOKIE = "firebreak_sign_in"
COOKIE_PATH = "/console"
MAX_FORM_BYTES = 256 * 1024

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


class SignInRequired(Exception):
    """No live session: the page answers with the sign-in page (a redirect)."""


class BadForm(Exception):
    """A form that is not this session's (CSRF) or not a form: 400."""


@dataclass(frozen=True)
class Viewer:
    """Who is signed in: their principal, session token and the token their forms carry."""

    principal: Principal
    email: str
    token: str
    form_token: str

    def api(self, request: Request) -> AbstractAsyncContextManager[ConsoleApi]:
        return console_api(request.app, self.token)


async def viewer(request: Request) -> Viewer:
    token = request.cookies.get(SESSION_COOKIE, "")
    backends: Backends = request.app.state.backends
    session = await console_session(request, backends, token) if token else None
    if session is None:
        raise SignInRequired()
    return Viewer(session.principal, session.email, token, session.form_token)


SignedIn = Annotated[Viewer, Depends(viewer)]


async def form_fields(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body's fields (the first value of each)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != (
        "application/x-www-form-urlencoded"
    ):
        raise BadForm("not a form")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise BadForm("form too large")
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as error:
        raise BadForm("form not UTF-8") from error
    return {name: values[0] for name, values in fields.items()}


async def checked_form(request: Request, signed_in: Viewer) -> dict[str, str]:
    """The form's fields, once its form token is the session's."""
    fields = await form_fields(request)
    if not secrets.compare_digest(fields.get("form_token", ""), signed_in.form_token):
        raise BadForm("this form is not from your session; reload the page and try again")
    return fields


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    return templates.TemplateResponse(request, template, context, status_code=status_code)

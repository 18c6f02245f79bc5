"""Signing in and out of the console: by email and password, or by a personal API key; and a
one-time link's page where a person sets their password."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from firebreak.errors import InvalidArgument
from services.gateway.backends import Backends
from services.gateway.console import sessions
from services.gateway.console.throttle import SignInThrottle
from services.gateway.console.web import (
    COOKIE_PATH,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    BadForm,
    SignedIn,
    checked_form,
    form_fields,
    page,
    set_cookie,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/console", include_in_schema=False)


def _pre_session_page(
    request: Request,
    template: str,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: object,
) -> Response:
    """A page whose form is sent before any session (sign-in, a link's password): its
    double-submit token goes in a cookie and in the form. An existing cookie is kept, so two
    open tabs both work."""
    token = request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(24)
    response = page(request, template, status_code, sign_in_token=token, **context)
    set_cookie(request, response, SIGN_IN_COOKIE, token)
    response.headers.update(headers or {})
    return response


async def _pre_session_form(request: Request) -> dict[str, str]:
    fields = await form_fields(request)
    cookie = request.cookies.get(SIGN_IN_COOKIE, "")
    if not cookie or not secrets.compare_digest(fields.get("sign_in_token", ""), cookie):
        raise BadForm("this form has expired; reload the page and try again")
    return fields


def _signed_in(request: Request, token: str) -> Response:
    response = RedirectResponse("/console", status_code=303)
    set_cookie(request, response, SESSION_COOKIE, token)
    response.delete_cookie(SIGN_IN_COOKIE, path=COOKIE_PATH)
    return response


@router.get("/sign-in")
async def sign_in_form(request: Request) -> Response:
    return _pre_session_page(request, "sign_in.html", error="")


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    fields = await _pre_session_form(request)
    email, password, key = (fields.get(name, "") for name in ("email", "password", "key"))
    # Attempts with a key count against the address they come from.
    who = email if not key else f"key from {request.client.host if request.client else '?'}"
    throttle: SignInThrottle = request.app.state.sign_in_throttle
    wait = throttle.wait(who)
    if wait:
        return _pre_session_page(
            request,
            "sign_in.html",
            429,
            headers={"Retry-After": str(wait)},
            error=f"Too many failed sign-ins. Try again in {wait} seconds.",
        )
    backends: Backends = request.app.state.backends
    async with backends.engine.begin() as connection:
        if key:
            person_id = await sessions.person_by_key(connection, key=key)
        else:
            person_id = await sessions.person_by_password(
                connection, email=email, password=password
            )
        token = None
        if person_id is not None:
            lifetime = timedelta(hours=request.app.state.console_session_hours)
            token = await sessions.start(connection, person_id=person_id, lifetime=lifetime)
    if token is None:
        throttle.failed(who)
        log.info("a console sign-in failed")
        wrong = (
            "That key is not a personal key that works."
            if key
            else ("The email address or password is wrong.")
        )
        return _pre_session_page(request, "sign_in.html", 401, error=wrong)
    throttle.succeeded(who)
    log.info("person %s signed in to the console", person_id)
    return _signed_in(request, token)


@router.post("/sign-out")
async def sign_out(request: Request, signed_in: SignedIn) -> Response:
    await checked_form(request, signed_in)
    backends: Backends = request.app.state.backends
    async with backends.engine.begin() as connection:
        await sessions.end(connection, token=signed_in.token)
    response = RedirectResponse("/console/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


LINK_UNUSABLE = (
    "It was used already, has expired, or never existed. Ask an administrator for a new one."
)


@router.get("/welcome/{token}", name="welcome")
async def welcome_form(request: Request, token: str) -> Response:
    backends: Backends = request.app.state.backends
    async with backends.engine.connect() as connection:
        person_id = await sessions.link_person(connection, token=token)
    if person_id is None:
        return page(
            request, "message.html", 404, heading="This link does not work", message=LINK_UNUSABLE
        )
    return _pre_session_page(request, "welcome.html", error="")


@router.post("/welcome/{token}")
async def welcome(request: Request, token: str) -> Response:
    fields = await _pre_session_form(request)
    password = fields.get("password", "")
    if password != fields.get("confirmation", ""):
        return _pre_session_page(
            request, "welcome.html", 422, error="The two passwords are not the same."
        )
    backends: Backends = request.app.state.backends
    try:
        async with backends.engine.begin() as connection:
            person_id = await sessions.redeem_link(connection, token=token, password=password)
            session = None
            if person_id is not None:
                lifetime = timedelta(hours=request.app.state.console_session_hours)
                session = await sessions.start(connection, person_id=person_id, lifetime=lifetime)
    except InvalidArgument as error:
        return _pre_session_page(
            request, "welcome.html", 422, error=f"The password {error.message}."
        )
    if session is None:
        return page(
            request, "message.html", 404, heading="This link does not work", message=LINK_UNUSABLE
        )
    log.info("person %s set a console password with a one-time link", person_id)
    return _signed_in(request, session)

"""Puts the console into the gateway's app: its pages, static files, state and error pages."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from firebreak.settings import Settings
from services.gateway.console import (
    admin_pages,
    board,
    incident_page,
    report_page,
    sign_in,
    trace_page,
)
from services.gateway.console.api import Refused
from services.gateway.console.live import LiveFeed
from services.gateway.console.throttle import SignInThrottle
from services.gateway.console.web import BadForm, SignInRequired, page


def install(app: FastAPI, settings: Settings) -> None:
    for module in (sign_in, board, incident_page, report_page, trace_page, admin_pages):
        app.include_router(module.router)
    app.mount(
        "/console/static",
        StaticFiles(directory=Path(__file__).parent / "static"),
        name="console-static",
    )
    app.state.traces_dir = settings.traces_dir  # trace_page.py
    app.state.public_url = settings.public_url  # routers/people.py: sign-in links
    app.state.console_idle = timedelta(minutes=settings.console_idle_minutes)
    app.state.console_session_hours = settings.console_session_hours
    app.state.sign_in_throttle = SignInThrottle()
    app.state.live_feed = LiveFeed()
    app.add_exception_handler(SignInRequired, _to_sign_in)
    app.add_exception_handler(BadForm, _bad_form)
    app.add_exception_handler(Refused, _refused)


async def _to_sign_in(request: Request, error: Exception) -> Response:
    return RedirectResponse("/console/sign-in", status_code=303)


async def _bad_form(request: Request, error: Exception) -> Response:
    return page(request, "message.html", 400, heading="That did not work", message=str(error))


async def _refused(request: Request, error: Exception) -> Response:
    """What the API refused a page, as a page: its status and its problem's words."""
    assert isinstance(error, Refused)
    heading = "Not found" if error.status == 404 else "That did not work"
    return page(request, "message.html", error.status, heading=heading, message=error.message)

"""Two releases on one NATS cluster keep their events apart: the stream, its subjects and the
durable consumers are named per release."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from firebreak.launcher import Platform
from firebreak.settings import Settings, SettingsError, bus_names
from tests.conftest import NatsServer, start_platform
from tests.gateway_client import Api
from tests.test_resilience import submit

BLUE = {
    "FIREBREAK_STREAM_NAME": "BLUE",
    "FIREBREAK_SUBJECT_PREFIX": "blue.events.v1.",
    "FIREBREAK_DURABLE_PREFIX": "blue-",
}


@pytest.fixture
def two_releases(nats_server: NatsServer, tmp_path: Path) -> Iterator[tuple[Platform, Platform]]:
    """The default release and a "blue" one, both on `nats_server`."""
    shared = {"FIREBREAK_NATS_URL": nats_server.url}
    default = start_platform(tmp_path / "default", extra_env=shared)
    try:
        blue = start_platform(tmp_path / "blue", extra_env=shared | BLUE)
    except BaseException:
        default.stop()
        raise
    yield default, blue
    blue.stop()
    default.stop()


def triaged_incidents(platform: Platform) -> set[str]:
    with sqlite3.connect(platform.var_dir / "triage.db") as database:
        rows = database.execute("SELECT incident_id FROM triage_decisions").fetchall()
    return {incident_id for (incident_id,) in rows}


async def streams_and_consumers(url: str) -> dict[str, list[str]]:
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        names = [str(info.config.name) for info in await js.streams_info()]
        # Durable consumers only: each gateway's console follows the stream with an ephemeral
        # one of its own (services/gateway/console/live.py), named by the server.
        return {
            name: sorted(c.name for c in await js.consumers_info(name) if c.config.durable_name)
            for name in names
        }
    finally:
        await client.close()


def test_each_release_triages_its_own_incidents_only_once(
    two_releases: tuple[Platform, Platform], nats_server: NatsServer
) -> None:
    releases = {"default": two_releases[0], "blue": two_releases[1]}
    reported: dict[str, list[str]] = {}
    for name, platform in releases.items():
        api = Api(platform)
        tenant = api.new_client()
        reported[name] = submit(api, tenant, 10)
        for incident_id in reported[name]:
            api.wait_until_notified(tenant, incident_id)

    for name, platform in releases.items():
        assert triaged_incidents(platform) == set(reported[name]), name
    services = ["evidence", "gateway", "intake", "notify", "review", "triage"]
    assert asyncio.run(streams_and_consumers(nats_server.url)) == {
        "FIREBREAK": services,
        "BLUE": [f"blue-{service}" for service in services],
    }


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FIREBREAK_STREAM_NAME", "BLUE.EVENTS"),
        ("FIREBREAK_SUBJECT_PREFIX", "blue.events.v1"),  # no trailing dot
        ("FIREBREAK_SUBJECT_PREFIX", "blue.*.v1."),
        ("FIREBREAK_DURABLE_PREFIX", "blue."),
    ],
)
def test_names_that_nats_would_misread_are_refused(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_environment({variable: value})


def test_the_names_default_to_the_first_release() -> None:
    assert bus_names({}) == ("FIREBREAK", "firebreak.events.v1.")
    assert bus_names(BLUE) == ("BLUE", "blue.events.v1.")

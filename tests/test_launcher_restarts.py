"""The launcher restarts a service that died, with back-off, as a Deployment would; a stop is
never raced by a restart."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from firebreak.launcher import Platform
from tests.conftest import start_platform
from tests.gateway_client import Api, eventually
from tests.test_make_run import processes_started_for


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Platform]:
    platform = start_platform(tmp_path)
    platform.supervise()
    yield platform
    platform.stop()


def launcher_log(platform: Platform) -> list[str]:
    log = platform.var_dir / "logs" / "launcher.log"
    return [line.split(" ", 1)[1] for line in log.read_text().splitlines()] if log.exists() else []


def replaced(platform: Platform, label: str, dead: subprocess.Popen[str]) -> bool:
    current = platform.processes.get(label)
    return current is not None and current is not dead and current.poll() is None


def kill(process: subprocess.Popen[str]) -> None:
    process.kill()  # SIGKILL: no graceful shutdown, as the OOM killer would
    process.wait()


def test_a_killed_service_comes_back_with_back_off_and_handles_reports(
    supervised: Platform,
) -> None:
    first = supervised.processes["triage"]
    kill(first)
    eventually(lambda: replaced(supervised, "triage", first))
    supervised.wait_until_ready()  # its health says SERVING again

    second = supervised.processes["triage"]
    kill(second)  # dies again at once: the delay doubles
    eventually(lambda: replaced(supervised, "triage", second))
    supervised.wait_until_ready()
    assert launcher_log(supervised) == [
        "triage exited with -9; restarting in 0.5s (restart 1)",
        "triage exited with -9; restarting in 1.0s (restart 2)",
    ]

    gateway = supervised.processes["gateway"]
    kill(gateway)
    eventually(lambda: replaced(supervised, "gateway", gateway))
    supervised.wait_until_ready()
    api = Api(supervised)
    tenant = api.new_client()
    created = api.report(tenant)
    assert created.status_code == 201, created.text
    assert api.wait_until_notified(tenant, created.json()["id"])["status"] == "triaged"


def test_nothing_is_restarted_once_the_platform_stops(tmp_path: Path) -> None:
    platform = start_platform(tmp_path)
    platform.supervise(interval=0.01)
    # Dies just as the stop begins: the supervisor may see it dead, but must not start it.
    platform.processes["notify"].kill()
    platform.stop()

    assert platform.processes == {}
    assert processes_started_for(tmp_path) == []
    restarts = [line for line in launcher_log(platform) if "restarting" in line]
    platform.restart_dead()  # a late round of supervision finds nothing to do
    assert [line for line in launcher_log(platform) if "restarting" in line] == restarts
    assert processes_started_for(tmp_path) == []

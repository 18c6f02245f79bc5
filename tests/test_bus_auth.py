"""Nobody on the bus beyond their part: each process's NATS user (firebreak/bus_auth.py), as the
launcher's real nats-server enforces it; TLS to NATS; and the chart's and NATS chart's side."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import helm_python as helm
import nats
import nats.errors
import nats.js.errors
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from nats.aio.client import Client as NATS

from firebreak import bus, bus_auth, events, runtime
from firebreak.bus_auth import ADMIN, BusLogin, BusNames
from firebreak.launcher import Platform, free_port, free_ports, nats_server_binary, wait_for_port
from firebreak.settings import SERVICES, Settings, SettingsError
from tests.test_helm_chart import CHART, REPO, VALUES, env_of, of_kind, render, with_values

NAMES = BusNames(events.STREAM, events.SUBJECT_PREFIX, "")
VIOLATION = "permissions violation"  # as nats-py reports the server's -ERR, lower-cased


# --- The launcher's nats-server ---------------------------------------------------------------


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """Only the nats-server of a platform, as `make run` and the tests' platforms start it."""
    nats_port, gateway_port = free_ports(2)
    platform = Platform(
        var_dir=tmp_path_factory.mktemp("bus-auth"),
        nats_port=nats_port,
        gateway_port=gateway_port,
        grpc_ports={},
        admin_key="fbk_test_" + uuid.uuid4().hex,
    )
    try:
        platform.start_nats_server()
        yield platform
    finally:
        platform.stop()


async def connect_as(platform: Platform, user: str) -> NATS:
    """Connected as a service connects (bus.connect), as `user`."""
    login = BusLogin(user, platform.nats_passwords[user])
    return await bus.connect(platform.nats_url, name=f"test-{user}", login=login)


@pytest.fixture
async def admin(launched: Platform) -> AsyncIterator[NATS]:
    client = await nats.connect(launched.admin_nats_url)
    yield client
    await client.close()


async def stream_messages(admin: NATS) -> int:
    return int((await admin.jetstream().stream_info(events.STREAM)).state.messages)


def violations(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if VIOLATION in record.getMessage()]


def test_the_launcher_keeps_its_nats_passwords_to_its_owner_and_across_starts(
    launched: Platform,
) -> None:
    for name in ("nats-passwords.json", "nats-server.conf"):
        assert (launched.var_dir / name).stat().st_mode & 0o777 == 0o600, name
    config = json.loads((launched.var_dir / "nats-server.conf").read_text())
    users = {user["user"]: user for user in config["authorization"]["users"]}
    assert set(users) == {*SERVICES, ADMIN}
    assert {user: entry["password"] for user, entry in users.items()} == launched.nats_passwords
    # The next platform on this var dir (make run's next start) finds the same passwords.
    assert bus_auth.local_passwords(launched.var_dir) == launched.nats_passwords


async def test_a_connection_without_the_right_credentials_is_refused(launched: Platform) -> None:
    wrong = bus_auth.with_login(launched.nats_url, "triage", "not-its-password")
    for url in (launched.nats_url, wrong):
        with pytest.raises(nats.errors.Error, match=r"(?i)authorization violation"):
            await nats.connect(url, allow_reconnect=False, connect_timeout=5)
    client = await connect_as(launched, "triage")  # the right ones are let in
    assert client.is_connected
    await client.close()


@pytest.mark.parametrize(
    ("user", "own", "someone_elses"),
    [
        ("intake", events.INCIDENT_REPORTED, events.INCIDENT_TRIAGED),
        ("triage", events.INCIDENT_TRIAGED, events.INCIDENT_REPORTED),
        ("gateway", events.PERSON_REGISTERED, events.NOTE_ADDED),
        ("review", events.NOTE_ADDED, events.EVIDENCE_COLLECTED),
    ],
)
async def test_a_service_publishes_its_own_event_types_only(
    launched: Platform,
    admin: NATS,
    caplog: pytest.LogCaptureFixture,
    user: str,
    own: str,
    someone_elses: str,
) -> None:
    client = await connect_as(launched, user)
    try:
        js = client.jetstream(timeout=2)
        await bus.ensure_stream(js, bus.stream_config())  # every service may
        before = await stream_messages(admin)
        ack = await js.publish(events.subject_for(own), b"its own")
        assert ack.stream == events.STREAM
        with caplog.at_level(logging.WARNING, logger="firebreak.bus"):
            with pytest.raises(nats.errors.TimeoutError):  # dropped: JetStream never saw it
                await js.publish(events.subject_for(someone_elses), b"forged")
        assert violations(caplog) == [
            f'NATS error: nats: {VIOLATION} for publish to "{events.subject_for(someone_elses)}"'
        ]
        assert await stream_messages(admin) == before + 1
    finally:
        await client.close()


async def test_only_the_admin_deletes_or_purges_the_stream(
    launched: Platform, admin: NATS, caplog: pytest.LogCaptureFixture
) -> None:
    client = await connect_as(launched, "review")
    try:
        js = client.jetstream(timeout=2)
        await bus.ensure_stream(js, bus.stream_config())
        await js.publish(events.subject_for(events.NOTE_ADDED), b"kept")
        kept = await stream_messages(admin)
        with caplog.at_level(logging.WARNING, logger="firebreak.bus"):
            with pytest.raises(nats.errors.TimeoutError):
                await js.purge_stream(events.STREAM)
            with pytest.raises(nats.errors.TimeoutError):
                await js.delete_stream(events.STREAM)
        assert len(violations(caplog)) == 2
        assert await stream_messages(admin) == kept

        admin_js = admin.jetstream()
        assert await admin_js.purge_stream(events.STREAM)
        assert await stream_messages(admin) == 0
        assert await admin_js.delete_stream(events.STREAM)
        with pytest.raises(nats.js.errors.NotFoundError):
            await admin_js.stream_info(events.STREAM)
        await bus.ensure_stream(js, bus.stream_config())  # a service makes it again
        assert await stream_messages(admin) == 0
    finally:
        await client.close()


async def test_a_service_reads_events_only_through_its_own_consumer(
    launched: Platform, admin: NATS, caplog: pytest.LogCaptureFixture
) -> None:
    intake, triage = await connect_as(launched, "intake"), await connect_as(launched, "triage")
    try:
        js = triage.jetstream(timeout=2)
        await bus.ensure_stream(js, bus.stream_config())
        await bus.ensure_consumer(js, "triage", [events.INCIDENT_REPORTED])
        with caplog.at_level(logging.WARNING, logger="firebreak.bus"):
            with pytest.raises(nats.errors.TimeoutError):
                await bus.ensure_consumer(js, "review", [events.INCIDENT_REPORTED])
            # Nor straight from the subjects, nor from another's consumer.
            await triage.subscribe(events.SUBJECT_PREFIX + ">")
            await triage.publish(f"$JS.API.CONSUMER.MSG.NEXT.{events.STREAM}.review", b"{}")
            await triage.flush()  # the server's -ERRs come before its PONG
            # …but nats-py hands them to the error callback in tasks of their own.
            for _ in range(50):
                if len(violations(caplog)) >= 3:
                    break
                await asyncio.sleep(0.1)
        # (nats-py lower-cases the server's error lines)
        assert [message.split(" for ")[1] for message in violations(caplog)] == [
            f'publish to "$js.api.consumer.durable.create.{events.STREAM.lower()}.review"',
            f'subscription to "{events.SUBJECT_PREFIX}>"',
            f'publish to "$js.api.consumer.msg.next.{events.STREAM.lower()}.review"',
        ]

        reported = f"report {uuid.uuid4()}".encode()
        await intake.jetstream().publish(events.subject_for(events.INCIDENT_REPORTED), reported)
        feed = bus.PullFeed(triage, "triage", batch=100)
        await feed.open()  # on triage's own inbox: allowed
        received: list[bytes] = []
        for _ in range(20):  # each pull request lasts under a second
            for message in await feed.next_batch(wait=5):
                received.append(message.data)
                await message.ack()
            if reported in received:
                break
        await feed.close()
        assert reported in received
        await triage.flush()
        unacked = None
        for _ in range(50):  # the server applies acks as they come: wait for it to settle
            info = await admin.jetstream().consumer_info(events.STREAM, "triage")
            unacked = info.num_ack_pending
            if unacked == 0:
                break
            await asyncio.sleep(0.1)
        assert unacked == 0
    finally:
        await intake.close()
        await triage.close()


# --- TLS --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _issue(
    directory: Path,
    name: str,
    *,
    signer: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None = None,
    usage: x509.ObjectIdentifier | None = None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A key and certificate: a CA's without `signer`, else one `signer` signs for `usage`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_key, issuer = (key, subject) if signer is None else (signer[0], signer[1].subject)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=signer is None, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if signer is None:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer[0].public_key()),
            critical=False,
        )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if usage == ExtendedKeyUsageOID.SERVER_AUTH:
        names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    certificate = builder.sign(issuer_key, hashes.SHA256())
    (directory / f"{name}.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key, certificate


@dataclass(frozen=True)
class TlsNats:
    port: int
    files: TlsFiles
    passwords: dict[str, str]

    @property
    def url(self) -> str:
        return f"tls://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def tls_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsNats]:
    """A nats-server that speaks TLS only, from the first byte, and wants client certificates:
    a CA, its server and client certificates made now."""
    directory = tmp_path_factory.mktemp("nats-tls")
    ca = _issue(directory, "ca")
    _issue(directory, "server", signer=ca, usage=ExtendedKeyUsageOID.SERVER_AUTH)
    _issue(directory, "client", signer=ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    files = TlsFiles(
        ca=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
    )
    passwords = bus_auth.local_passwords(directory)
    port = free_port()
    config = {
        "listen": f"127.0.0.1:{port}",
        "jetstream": {"store_dir": str(directory / "store")},
        "authorization": bus_auth.authorization(passwords, NAMES),
        "tls": {
            "cert_file": str(files.server_cert),
            "key_file": str(files.server_key),
            "ca_file": str(files.ca),
            "verify": True,
            "handshake_first": True,
        },
    }
    config_file = directory / "nats-server.conf"
    config_file.write_text(json.dumps(config))
    process = subprocess.Popen(
        [nats_server_binary(), "-c", str(config_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield TlsNats(port, files, passwords)
    finally:
        process.terminate()
        process.wait(10)


def tls_settings(server: TlsNats, **overrides: str) -> Settings:
    environment = {
        "FIREBREAK_NATS_URL": server.url,
        "FIREBREAK_NATS_USER": "triage",
        "FIREBREAK_NATS_PASSWORD": server.passwords["triage"],
        "FIREBREAK_NATS_TLS_CA": str(server.files.ca),
        "FIREBREAK_NATS_TLS_CERT": str(server.files.client_cert),
        "FIREBREAK_NATS_TLS_KEY": str(server.files.client_key),
    }
    environment.update(overrides)
    return Settings.from_environment({k: v for k, v in environment.items() if v})


async def test_a_service_connects_over_tls_with_its_settings(tls_nats: TlsNats) -> None:
    settings = tls_settings(tls_nats)
    # The path every service and the gateway take: connect, then make sure of the stream.
    client = await asyncio.wait_for(
        runtime.connect_bus(settings, "triage", bus.stream_config()), timeout=30
    )
    try:
        info = await client.jetstream().stream_info(events.STREAM)
        assert info.config.name == events.STREAM
    finally:
        await client.close()


@pytest.mark.parametrize(
    "missing",
    ["FIREBREAK_NATS_TLS_CA", "FIREBREAK_NATS_TLS_CERT"],
    ids=["server-not-trusted", "no-client-certificate"],
)
async def test_tls_is_refused_without_the_ca_or_a_client_certificate(
    tls_nats: TlsNats, missing: str
) -> None:
    overrides = {missing: ""}
    if missing == "FIREBREAK_NATS_TLS_CERT":
        overrides["FIREBREAK_NATS_TLS_KEY"] = ""
    context = bus_auth.tls_context(tls_settings(tls_nats, **overrides))
    # ssl.SSLError, or nats-py's error for a connection the server closed in the handshake
    with pytest.raises((OSError, nats.errors.Error)):
        await nats.connect(
            tls_nats.url,
            user="triage",
            password=tls_nats.passwords["triage"],
            tls=context,
            tls_handshake_first=True,
            allow_reconnect=False,
            connect_timeout=5,
        )


async def test_a_plaintext_connection_to_the_tls_server_gets_nothing(tls_nats: TlsNats) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", tls_nats.port)
    writer.write(b'CONNECT {"verbose": false}\r\nPING\r\n')
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(), timeout=30)  # until the server hangs up
    writer.close()
    assert b"INFO" not in reply and b"PONG" not in reply
    with pytest.raises((nats.errors.Error, TimeoutError)):  # nor does a client without TLS
        await nats.connect(
            f"nats://127.0.0.1:{tls_nats.port}", allow_reconnect=False, connect_timeout=2
        )


@pytest.mark.parametrize(
    ("environment", "complaint"),
    [
        ({"FIREBREAK_NATS_USER": "triage"}, "FIREBREAK_NATS_USER and FIREBREAK_NATS_PASSWORD"),
        (
            {"FIREBREAK_NATS_TLS_CERT": "c.crt"},
            "FIREBREAK_NATS_TLS_CERT and FIREBREAK_NATS_TLS_KEY",
        ),
        ({"FIREBREAK_NATS_TLS_CA": "ca.crt"}, "FIREBREAK_NATS_TLS_CA needs tls://"),
        (
            {"FIREBREAK_NATS_URL": "tls://a:4222,nats://b:4222"},
            "FIREBREAK_NATS_URL must be all tls:// servers or none",
        ),
    ],
    ids=["user-without-password", "cert-without-key", "ca-without-tls", "mixed-urls"],
)
def test_nats_settings_that_cannot_work_are_refused_by_name(
    environment: dict[str, str], complaint: str
) -> None:
    with pytest.raises(SettingsError, match=complaint):
        Settings.from_environment(environment)


# --- The charts -------------------------------------------------------------------------------

NATS_VALUES = REPO / "deploy" / "helm" / "nats-values-production.yaml"


def test_each_pod_logs_in_to_nats_as_its_own_user() -> None:
    rendered = render()
    [secret] = [manifest for manifest in rendered if manifest["kind"] == "Secret"]
    for name, deployment in of_kind(rendered, "Deployment").items():
        env = env_of(deployment)
        assert env["FIREBREAK_NATS_URL"]["value"] == "nats://nats:4222"
        assert env["FIREBREAK_NATS_USER"]["value"] == name
        key = env["FIREBREAK_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"]
        assert secret["stringData"][key] == VALUES["secret"]["natsPasswords"][name]
        assert "FIREBREAK_NATS_TLS_CA" not in env


def test_tls_to_nats_mounts_the_ca_and_takes_tls_urls_only() -> None:
    nats_values = {
        "url": "tls://nats-0:4222,tls://nats-1:4222",
        "tls": {"enabled": True, "secretName": "nats-client", "clientCertificate": True},
    }
    for deployment in of_kind(render(with_values(nats=nats_values)), "Deployment").values():
        env = env_of(deployment)
        files = {env[f"FIREBREAK_NATS_TLS_{part}"]["value"] for part in ("CA", "CERT", "KEY")}
        spec = deployment["spec"]["template"]["spec"]
        [volume] = [volume for volume in spec["volumes"] if volume["name"] == "nats-tls"]
        [mount] = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "nats-tls"]
        assert volume["secret"]["secretName"] == "nats-client" and mount["readOnly"] is True
        assert {str(Path(file).parent) for file in files} == {mount["mountPath"]}
    plain = {**nats_values, "url": "nats://nats:4222"}
    with pytest.raises(helm.HelmValuesError, match="/nats/url"):
        render(with_values(nats=plain))
    production = yaml.safe_load((CHART / "values-production.yaml").read_text())
    assert production["nats"]["tls"]["enabled"] is True
    assert bus_auth.uses_tls(production["nats"]["url"])


def test_the_nats_chart_values_grant_each_user_what_the_code_needs() -> None:
    """deploy/helm/nats-values-production.yaml: the users and permissions bus_auth.py gives the
    names the Firebreak chart gives the release `firebreak`, passwords from its Secret."""
    production = yaml.safe_load((CHART / "values-production.yaml").read_text())
    deployments = of_kind(render(production, release="firebreak"), "Deployment").values()
    [names] = {
        BusNames(
            env_of(deployment)["FIREBREAK_STREAM_NAME"]["value"],
            env_of(deployment)["FIREBREAK_SUBJECT_PREFIX"]["value"],
            "",
        )
        for deployment in deployments
    }
    values = yaml.safe_load(NATS_VALUES.read_text())
    placeholders = {user: f"<< ${user.upper()}_NATS_PASSWORD >>" for user in bus_auth.USERS}
    assert values["config"]["merge"]["authorization"] == bus_auth.authorization(placeholders, names)
    secret = production["secret"]["existingSecret"]
    assert values["container"]["env"] == {
        f"{user.upper()}_NATS_PASSWORD": {
            "valueFrom": {"secretKeyRef": {"name": secret, "key": f"{user}-nats-password"}}
        }
        for user in bus_auth.USERS
    }
    assert values["config"]["nats"]["tls"]["merge"] == {"handshake_first": True}


def test_the_nats_chart_values_adapt_to_another_release_as_their_comments_say() -> None:
    """The file's own command for the release `blue`, run as written: the users, permissions
    and Secret the Firebreak chart gives that release."""
    [command] = [
        line.removeprefix("#").strip()
        for line in NATS_VALUES.read_text().splitlines()
        if line.startswith("#   sed ")
    ]
    command = command.partition(" > ")[0]  # to standard output
    adapted = yaml.safe_load(
        subprocess.run(command, shell=True, cwd=REPO, check=True, capture_output=True).stdout
    )
    rendered = render(with_values(), release="blue")
    [env] = {
        (env["FIREBREAK_STREAM_NAME"]["value"], env["FIREBREAK_SUBJECT_PREFIX"]["value"])
        for env in map(env_of, of_kind(rendered, "Deployment").values())
    }
    names = BusNames(*env, "")
    assert names.stream == "blue-firebreak"
    placeholders = {user: f"<< ${user.upper()}_NATS_PASSWORD >>" for user in bus_auth.USERS}
    assert adapted["config"]["merge"]["authorization"] == bus_auth.authorization(
        placeholders, names
    )
    [secret] = [manifest for manifest in rendered if manifest["kind"] == "Secret"]
    secret_names = {
        variable["valueFrom"]["secretKeyRef"]["name"]
        for variable in adapted["container"]["env"].values()
    }
    assert secret_names == {secret["metadata"]["name"]}
    # Only the names changed: the TLS and cluster settings are the same.
    original = yaml.safe_load(NATS_VALUES.read_text())
    assert adapted["config"]["nats"] == original["config"]["nats"]
    assert adapted["config"]["cluster"] == original["config"]["cluster"]

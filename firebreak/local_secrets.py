"""The secrets a local platform (`make run`, the tests) keeps in its var dir: written readable by
their owner only from the first byte, and generated once, so that a restarted platform still
reads its evidence, verifies its tokens and logs in to its NATS store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Writes a file only its owner may read, created so (not chmod-ed after the write)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)  # touch keeps the mode of a file that was already there
    path.write_text(text)


def kept_secret(path: Path, generate: Callable[[], str]) -> str:
    """The secret kept in `path`; on first use, `generate`d and written there."""
    saved = path.read_text().strip() if path.exists() else ""
    if saved:
        return saved
    secret = generate()
    write_private(path, secret + "\n")
    return secret

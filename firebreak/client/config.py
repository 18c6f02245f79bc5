"""Where the client finds the gateway and its key: FIREBREAK_URL and FIREBREAK_KEY, else the
login `firebreak login` stored in the user's config directory (readable by the user only)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from firebreak.client.errors import CommandFailed, ExitCode
from firebreak.local_secrets import write_private

DEFAULT_URL = "http://127.0.0.1:8080"  # the gateway as `make run` starts it
LOGIN_FILE = "login.json"


@dataclass(frozen=True)
class Login:
    url: str
    key: str


def config_dir() -> Path:
    """$XDG_CONFIG_HOME/firebreak, else ~/.config/firebreak (the XDG default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "firebreak"


def login_path() -> Path:
    return config_dir() / LOGIN_FILE


def stored_login() -> Login | None:
    path = login_path()
    try:
        saved = json.loads(path.read_text())
        return Login(url=str(saved["url"]), key=str(saved["key"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CommandFailed(
            ExitCode.NOT_LOGGED_IN, f"cannot read {path} ({error}): run `firebreak login` again"
        ) from None


def gateway_url() -> str:
    """The gateway to talk to, with or without a key: FIREBREAK_URL, the stored login's, or
    the local one."""
    if url := os.environ.get("FIREBREAK_URL"):
        return url.rstrip("/")
    saved = stored_login()
    return saved.url if saved else DEFAULT_URL


def current_login() -> Login:
    """The gateway and key to use; each of FIREBREAK_URL and FIREBREAK_KEY overrides the stored
    login's."""
    saved = stored_login()
    key = os.environ.get("FIREBREAK_KEY") or (saved.key if saved else None)
    if not key:
        raise CommandFailed(
            ExitCode.NOT_LOGGED_IN,
            "not logged in: run `firebreak login`, or set FIREBREAK_KEY (and FIREBREAK_URL)",
        )
    return Login(url=gateway_url(), key=key)


def store_login(login: Login) -> Path:
    """Writes the login readable by the user only, from the first byte."""
    path = login_path()
    # The folder too: its listing says who is logged in where.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(path, json.dumps({"url": login.url, "key": login.key}) + "\n")
    return path

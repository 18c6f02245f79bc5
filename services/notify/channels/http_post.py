"""One JSON POST with a hard time limit, its outcome sorted into delivered, worth retrying, or not.

2xx is delivered. 5xx, 408 and 429 say "not now", as do timeouts and connection failures: worth
retrying. Any other 4xx says the request itself is wrong (a revoked URL, a rejected payload), and
so does a 3xx: redirects are not followed, the target's URL needs updating. Nothing else in the
answer (Retry-After included) is honoured; the caller's backoff decides when to try again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from services.notify.channels import DeliveryFailed

USER_AGENT = "Firebreak-Notify/1"
# How much of a refusal's body goes into the failure's message.
DETAIL_BYTES = 200
RETRYABLE_STATUSES = frozenset({408, 429})


def json_body(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON: the exact bytes sent, and for a webhook the bytes signed."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def is_retryable_status(status: int) -> bool:
    return status >= 500 or status in RETRYABLE_STATUSES


async def post_json(
    url: str,
    body: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    time_limit: float,
    client: httpx.AsyncClient | None = None,
) -> None:
    """POSTs body to url; returns on 2xx, raises DeliveryFailed otherwise.

    `time_limit` (seconds) bounds the whole exchange, not only each network wait, so a receiver
    that answers a byte at a time cannot hold a delivery beyond it either."""
    # Only the host goes into messages: a Slack or Teams URL's path is its secret.
    host = urlsplit(url).netloc.rpartition("@")[2]
    request_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    request_headers.update(headers or {})
    try:
        async with asyncio.timeout(time_limit):
            if client is not None:
                status, detail = await _post(client, url, body, request_headers, time_limit)
            else:
                async with httpx.AsyncClient(follow_redirects=False) as own_client:
                    status, detail = await _post(own_client, url, body, request_headers, time_limit)
    except (TimeoutError, httpx.TimeoutException):
        raise DeliveryFailed(f"{host}: no answer within {time_limit} s", retryable=True) from None
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as error:
        raise DeliveryFailed(f"{host}: {error}", retryable=False) from None
    except httpx.TransportError as error:
        raise DeliveryFailed(
            f"{host}: {type(error).__name__} {error}".rstrip(), retryable=True
        ) from None
    if 200 <= status < 300:
        return
    raise DeliveryFailed(f"{host} answered {status}{detail}", retryable=is_retryable_status(status))


async def _post(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    time_limit: float,
) -> tuple[int, str]:
    """The status and, for a refusal, its reason and the start of the answer's body (never the
    whole body: a receiver could send anything)."""
    async with client.stream(
        "POST", url, content=body, headers=headers, timeout=time_limit, follow_redirects=False
    ) as response:
        if response.is_success:
            return response.status_code, ""
        reason = f" {response.reason_phrase}" if response.reason_phrase else ""
        start = b""
        try:
            async for chunk in response.aiter_bytes():
                start += chunk
                if len(start) >= DETAIL_BYTES:
                    break
        except httpx.DecodingError:  # the status says enough without the body
            pass
        text = start[:DETAIL_BYTES].decode(errors="replace").strip()
        return response.status_code, reason + (f": {text}" if text else "")

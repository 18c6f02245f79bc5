"""The gateway's gRPC channels, made for a cluster: every replica behind a name, keepalive,
and retries for reads only.

A name such as `fb-firebreak-intake-headless:50051` (a headless Service: one DNS record per
ready pod) is resolved through DNS and calls are spread over all its addresses (round_robin),
instead of every call of a connection going to the one pod a ClusterIP picked. Keepalive pings
notice a lost node in seconds rather than at the next call's timeout. A read (Get*, List*) that
fails with UNAVAILABLE (a replica stopping, a node gone) is retried on another replica; a write
never is, as it might have taken effect.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf.descriptor import FileDescriptor
from opentelemetry.instrumentation.grpc import aio_client_interceptors

from firebreak.grpc_scope import scope_token_interceptors
from firebreak.scope_token import ScopeTokens

KEEPALIVE_TIME_MS = 10_000
KEEPALIVE_TIMEOUT_MS = 5_000
CHANNEL_KEEPALIVE_OPTIONS = (
    ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
    ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),  # a quiet channel keeps pinging
)
# A server answers pings more often than its default (5 min) with GOAWAY "too_many_pings":
# it must allow what the channels above send.
SERVER_KEEPALIVE_OPTIONS = (
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", KEEPALIVE_TIME_MS // 2),
)
READ_PREFIXES = ("Get", "List")
READ_RETRY_POLICY = {
    "maxAttempts": 4,
    "initialBackoff": "0.1s",
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
# Names given as a bare host:port are resolved by DNS; other targets (ipv4:, unix:) as given.
TARGET_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:")


def open_channel(
    address: str,
    *contracts: FileDescriptor,
    options: Sequence[tuple[str, Any]] = (),
    tokens: ScopeTokens | None = None,
    credentials: grpc.ChannelCredentials | None = None,
) -> grpc.aio.Channel:
    """A traced channel to every replica behind `address`; the reads of the services that
    `contracts` (the services' *_pb2.DESCRIPTOR) define are retried. With `tokens`, every call
    carries the scope token of the request in progress; with `credentials`, over TLS."""
    interceptors: list[grpc.aio.ClientInterceptor] = list(aio_client_interceptors())
    if tokens is not None:
        interceptors.extend(scope_token_interceptors(tokens))
    all_options = (*channel_options(*contracts), *options)
    if credentials is None:
        return grpc.aio.insecure_channel(
            target(address), options=all_options, interceptors=interceptors
        )
    return grpc.aio.secure_channel(
        target(address), credentials, options=all_options, interceptors=interceptors
    )


def target(address: str) -> str:
    """`host:port` as a DNS target; an address that names its scheme as it is."""
    return address if address.startswith(TARGET_SCHEMES) else f"dns:///{address}"


def channel_options(*contracts: FileDescriptor) -> tuple[tuple[str, Any], ...]:
    service_config = {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [{"name": read_methods(*contracts), "retryPolicy": READ_RETRY_POLICY}],
    }
    return (
        ("grpc.service_config", json.dumps(service_config)),
        ("grpc.enable_retries", 1),
        *CHANNEL_KEEPALIVE_OPTIONS,
    )


def read_methods(*contracts: FileDescriptor) -> list[dict[str, str]]:
    """The unary Get* and List* methods of the contracts' services, as service config names."""
    return [
        {"service": service.full_name, "method": method.name}
        for contract in contracts
        for service in contract.services_by_name.values()
        for method in service.methods
        if method.name.startswith(READ_PREFIXES)
        and not method.client_streaming
        and not method.server_streaming
    ]

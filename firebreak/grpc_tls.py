"""mTLS between the gateway and the services, when FIREBREAK_GRPC_TLS_CA, _CERT and _KEY name a
CA and this process's certificate and key (from the chart's Secret): servers require a client
certificate the CA signed, and the gateway presents its own. Unset, gRPC is plaintext (make run,
on loopback)."""

from __future__ import annotations

import grpc

from firebreak.settings import Settings


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    if settings.grpc_tls_ca is None or settings.grpc_tls_cert is None:
        return None
    assert settings.grpc_tls_key is not None  # Settings takes the three together
    return grpc.ssl_server_credentials(
        [(settings.grpc_tls_key.read_bytes(), settings.grpc_tls_cert.read_bytes())],
        root_certificates=settings.grpc_tls_ca.read_bytes(),
        require_client_auth=True,
    )


def channel_credentials(settings: Settings) -> grpc.ChannelCredentials | None:
    if settings.grpc_tls_ca is None or settings.grpc_tls_cert is None:
        return None
    assert settings.grpc_tls_key is not None
    return grpc.ssl_channel_credentials(
        root_certificates=settings.grpc_tls_ca.read_bytes(),
        private_key=settings.grpc_tls_key.read_bytes(),
        certificate_chain=settings.grpc_tls_cert.read_bytes(),
    )

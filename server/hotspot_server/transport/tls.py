"""The server's TLS material (--tls-cert, --tls-key, --tls-client-ca), for gRPC and HTTP alike.

The files are looked at again on every new connection, before its handshake (a stat of each,
a few microseconds against a handshake's milliseconds): a renewed certificate or a new client
CA applies to the next connection, without a restart. A pair that does not load (a key that
does not match the certificate, a file half written) keeps the material read last, and is
reported once per change. Connections already open keep what they started with.
"""

from __future__ import annotations

import logging
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import grpc

logger = logging.getLogger("hotspot.auth")

Signature = tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class _Material:
    cert: bytes
    key: bytes
    client_ca: bytes | None
    http_context: ssl.SSLContext


class TlsFiles:
    def __init__(self, cert: Path, key: Path, client_ca: Path | None) -> None:
        """Raises ValueError for material that does not load, OSError for a file not readable."""
        self._paths = (cert, key) if client_ca is None else (cert, key, client_ca)
        self._client_ca_path = client_ca
        self.requires_client_certificate = client_ca is not None
        self._signature = self._current_signature()
        self._material = self._load()
        # Every HTTP connection starts on this context; its handshake moves to the latest one.
        self._http_front = self._material.http_context
        self._http_front.sni_callback = self._on_client_hello

    def _current_signature(self) -> Signature:
        signature = []
        for path in self._paths:
            status = os.stat(path)
            signature.append((status.st_mtime_ns, status.st_size, status.st_ino))
        return tuple(signature)

    def _load(self) -> _Material:
        cert, key, *ca = (path.read_bytes() for path in self._paths)
        client_ca = ca[0] if ca else None
        return _Material(cert, key, client_ca, self._http_context(cert, key, client_ca))

    def _http_context(self, cert: bytes, key: bytes, client_ca: bytes | None) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # load_cert_chain reads files only; a private temporary directory keeps the key unseen.
        with tempfile.TemporaryDirectory(prefix="hotspot-tls-") as directory:
            cert_file, key_file = Path(directory, "cert.pem"), Path(directory, "key.pem")
            cert_file.write_bytes(cert)
            key_file.write_bytes(key)
            try:
                context.load_cert_chain(cert_file, key_file)
            except ssl.SSLError as error:
                raise ValueError(
                    f"{self._paths[0]} and {self._paths[1]} are not a certificate and its "
                    f"key: {error.reason or error}"
                ) from None
        if client_ca is not None:
            try:
                context.load_verify_locations(cadata=client_ca.decode("ascii", "replace"))
            except ssl.SSLError as error:
                raise ValueError(
                    f"{self._client_ca_path}: no CA certificate: {error.reason or error}"
                ) from None
            # Optional on HTTP: health probes carry no certificate; every endpoint but
            # /healthz and /readyz still needs an identity (a certificate or a token).
            context.verify_mode = ssl.CERT_OPTIONAL
        return context

    def current(self) -> _Material:
        """The material to use for a new connection, read again if a file changed."""
        try:
            signature = self._current_signature()
            if signature != self._signature:
                self._signature = signature  # a broken pair is reported once per change
                self._material = self._load()
                logger.info(
                    "TLS material reloaded from %s",
                    ", ".join(map(str, self._paths)),
                    extra={"event": "tls_reloaded"},
                )
        except (OSError, ValueError) as error:
            logger.error(
                "TLS material not reloaded, the material read last still applies: %s",
                error,
                extra={"event": "tls_reload_failed"},
            )
        return self._material

    # -- gRPC -----------------------------------------------------------------------------

    def grpc_credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._grpc_configuration(self._material),
            self._grpc_fetch,  # type: ignore[arg-type]  # grpc-stubs omits None, "no change"
            require_client_authentication=self.requires_client_certificate,
        )

    @staticmethod
    def _grpc_configuration(material: _Material) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(material.key, material.cert)], root_certificates=material.client_ca
        )

    def _grpc_fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """grpcio calls this before each handshake; None keeps the configuration it has."""
        served = self._material
        material = self.current()
        return None if material is served else self._grpc_configuration(material)

    # -- HTTP -----------------------------------------------------------------------------

    def http_context(self) -> ssl.SSLContext:
        return self._http_front

    def _on_client_hello(
        self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> None:
        material = self.current()
        if connection.context is not material.http_context:
            connection.context = material.http_context

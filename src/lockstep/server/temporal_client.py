"""Connecting to Temporal: the one place that turns the ``LOCKSTEP_TEMPORAL_*`` settings
(address, namespace, TLS, API key) into a client, for the server and for every worker, and
that turns the SDK's connection failures into one line saying what to fix.

What the SDK raises, checked against a real dev server (and one behind a TLS terminator):
an unreachable address, an unresolvable name and every TLS failure are a ``RuntimeError``
whose text carries the transport's error (``ConnectionRefused``,
``InvalidCertificate(UnknownIssuer)``, ``InvalidMessage(InvalidContentType)``…); a namespace
that does not exist is *not* an error of ``Client.connect`` — it is found by asking for it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from lockstep import tracing
from lockstep.errors import ConfigError, EngineUnavailable
from lockstep.settings import Settings

if TYPE_CHECKING:
    from temporalio.client import Client
    from temporalio.service import TLSConfig

#: the transport's names of a TLS failure, as the SDK's core (rustls) words them; an alert
#: the server sends after the handshake (TLS 1.3 checks the client's certificate then)
#: reaches it as "received fatal alert: NAME"
_TLS_FAILURES = re.compile(
    r"\b(InvalidCertificate\(\w+\)|InvalidMessage\(\w+\)|AlertReceived\(\w+\)"
    r"|NoCertificatesPresented|PeerIncompatible\w*|PeerMisbehaved\w*|HandshakeFailure)"
)
_ALERT = re.compile(r"received fatal alert: (\w+)")
_TLS_REASONS = {
    "InvalidCertificate(UnknownIssuer)": "the server's certificate is not signed by a CA "
    "this client trusts",
    "InvalidCertificate(NotValidForName)": "the server's certificate does not name this host",
    "InvalidCertificate(Expired)": "the server's certificate has expired",
    "InvalidMessage(InvalidContentType)": "the server did not answer in TLS (a plain port?)",
    "AlertReceived(CertificateRequired)": "the server asks for a client certificate",
    "AlertReceived(BadCertificate)": "the server refused the client certificate",
    "AlertReceived(UnknownCA)": "the server does not trust the client certificate's CA",
}


def tls_enabled(settings: Settings) -> bool:
    """Whether to speak TLS: as ``LOCKSTEP_TEMPORAL_TLS`` says, else when any TLS file or an
    API key is set (Temporal Cloud takes API keys over TLS only)."""
    if settings.temporal_tls is not None:
        return settings.temporal_tls
    return any(
        (
            settings.temporal_tls_ca,
            settings.temporal_tls_cert,
            settings.temporal_tls_key,
            settings.temporal_tls_server_name,
            settings.temporal_api_key,
        )
    )


def _pem(path: Path, setting: str) -> bytes:
    try:
        data = path.expanduser().read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{setting}: cannot read {path}: {exc.strerror or exc}; point it at a readable PEM file"
        ) from None
    if b"-----BEGIN " not in data:
        raise ConfigError(f"{setting}: {path} is not a PEM file; point it at a PEM file")
    return data


def tls_config(settings: Settings) -> TLSConfig | bool:
    """The ``tls`` argument of ``Client.connect`` from the settings (``False``: plain gRPC;
    ``True``: TLS verified against the system's CAs); a ``ConfigError`` naming the setting
    when a file cannot be read or only half of a client certificate is given."""
    from temporalio.service import TLSConfig

    files = (settings.temporal_tls_ca, settings.temporal_tls_cert, settings.temporal_tls_key)
    if settings.temporal_tls is False and (any(files) or settings.temporal_tls_server_name):
        raise ConfigError(
            "LOCKSTEP_TEMPORAL_TLS is false but other LOCKSTEP_TEMPORAL_TLS_* settings are set; "
            "unset them or LOCKSTEP_TEMPORAL_TLS"
        )
    if not tls_enabled(settings):
        return False
    cert, key = settings.temporal_tls_cert, settings.temporal_tls_key
    if (cert is None) != (key is None):
        have, missing = (
            ("CERT", "KEY") if cert is not None else ("KEY", "CERT")
        )  # a client certificate is its certificate and its key
        raise ConfigError(
            f"LOCKSTEP_TEMPORAL_TLS_{have} is set but LOCKSTEP_TEMPORAL_TLS_{missing} is not; "
            "a client certificate (mTLS) needs both"
        )
    if not any(files) and settings.temporal_tls_server_name is None:
        return True
    ca = settings.temporal_tls_ca
    return TLSConfig(
        server_root_ca_cert=_pem(ca, "LOCKSTEP_TEMPORAL_TLS_CA") if ca else None,
        domain=settings.temporal_tls_server_name,
        client_cert=_pem(cert, "LOCKSTEP_TEMPORAL_TLS_CERT") if cert else None,
        client_private_key=_pem(key, "LOCKSTEP_TEMPORAL_TLS_KEY") if key else None,
    )


def describe_transport(settings: Settings) -> str:
    """How this process talks to Temporal, for ``doctor`` and start-up lines — never the key."""
    if not tls_enabled(settings):
        how = "plain gRPC"
    else:
        how = "TLS" + (" (own CA)" if settings.temporal_tls_ca else "")
        how += ", client certificate" if settings.temporal_tls_cert else ""
    return f"{how}, API key {'set' if settings.temporal_api_key else 'not set'}"


def _failure(address: str, exc: Exception, tls: bool) -> EngineUnavailable:
    text = _ALERT.sub(r"AlertReceived(\1)", str(exc))
    if found := _TLS_FAILURES.search(text):
        reason = _TLS_REASONS.get(found.group(1), found.group(1))
        check = (
            "LOCKSTEP_TEMPORAL_TLS_CERT and LOCKSTEP_TEMPORAL_TLS_KEY"
            if found.group(1).startswith("AlertReceived")  # the server refused this client
            else "LOCKSTEP_TEMPORAL_TLS_CA, LOCKSTEP_TEMPORAL_TLS_SERVER_NAME and "
            "LOCKSTEP_TEMPORAL_TLS"
        )
        return EngineUnavailable(
            f"Temporal at {address}: TLS handshake failed: {reason}; check {check}"
        )
    if "Connection refused" in text or "ConnectionRefused" in text:
        why = "connection refused"
    elif "dns error" in text:
        why = "its host name does not resolve"
    elif "get_system_info" in text and tls:
        # a TLS 1.3 server checks the client's certificate after the handshake; its refusal
        # may reach the client as a closed connection rather than as the alert it sent
        why = (
            "it closed the connection after the TLS handshake (does it want a client "
            "certificate, or refuse this one? see LOCKSTEP_TEMPORAL_TLS_CERT and _KEY)"
        )
    elif "get_system_info" in text:
        # a plain client talking to a TLS port sees its connection closed after the handshake
        why = "it closed the connection (does it speak TLS? then set LOCKSTEP_TEMPORAL_TLS=true)"
    else:
        why = text.splitlines()[0][:200] if text else type(exc).__name__
    return EngineUnavailable(
        f"cannot reach Temporal at {address}: {why}; check --temporal "
        "(LOCKSTEP_TEMPORAL_ADDRESS) and that Temporal is up"
    )


async def connect(address: str, settings: Settings, namespace: str | None = None) -> Client:
    """A client of namespace ``namespace`` (else the settings') of the Temporal at ``address``,
    over TLS and with an API key as the settings say; the namespace is checked to exist."""
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
    from temporalio.client import Client
    from temporalio.service import RPCError, RPCStatusCode

    from lockstep.engine.payloads import DATA_CONVERTER
    from lockstep.server.telemetry import quiet_runtime

    namespace = namespace or settings.temporal_namespace
    tls = tls_config(settings)
    key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    quiet_runtime()
    try:
        client = await Client.connect(
            address,
            data_converter=DATA_CONVERTER,
            namespace=namespace,
            tls=tls,
            api_key=key,
            interceptors=tracing.client_interceptors(),
        )
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace)
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise ConfigError(
                f"Temporal at {address} has no namespace {namespace}; create it with "
                f"`temporal operator namespace create {namespace}` or pass --namespace"
            ) from None
        if exc.status in (RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.PERMISSION_DENIED):
            raise ConfigError(
                f"Temporal at {address} refused this client for namespace {namespace}: "
                f"{exc.message}; check LOCKSTEP_TEMPORAL_API_KEY or the client certificate"
            ) from None
        raise _failure(address, exc, tls is not False) from None
    except (RuntimeError, ValueError) as exc:
        raise _failure(address, exc, tls is not False) from None
    return client

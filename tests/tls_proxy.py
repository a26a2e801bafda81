"""A TLS terminator for tests: a self-signed CA, a server certificate for 127.0.0.1 and a
client certificate (``make_ca``), and a proxy that accepts TLS (ALPN h2), asking for a client
certificate when told to (mTLS), and pipes the plain bytes to a local port (``tls_proxy``) —
Temporal behind TLS, as a cluster or Temporal Cloud serves it."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import selectors
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path
    #: a client certificate the CA signed (for mTLS), and its key
    client_cert: Path
    client_key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_ca(folder: Path, name: str = "test-ca") -> Pki:
    """A new CA (``ca.pem``), a server certificate it signed for 127.0.0.1 and localhost,
    and a client certificate it signed."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
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
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(
        folder / "ca.pem",
        folder / "server.pem",
        folder / "server.key",
        folder / "client.pem",
        folder / "client.key",
    )
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server = x509.SubjectAlternativeName(names)
    _leaf(ca, ca_key, "temporal", server, x509.ExtendedKeyUsageOID.SERVER_AUTH, pki.cert, pki.key)
    client = x509.SubjectAlternativeName([x509.DNSName("lockstep-worker")])
    _leaf(
        ca, ca_key, "lockstep", client, x509.ExtendedKeyUsageOID.CLIENT_AUTH,
        pki.client_cert, pki.client_key,
    )  # fmt: skip
    return pki


def _leaf(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common: str,
    names: x509.SubjectAlternativeName,
    usage: x509.ObjectIdentifier,
    cert_file: Path,
    key_file: Path,
) -> None:
    """A certificate ``ca`` signed for ``names`` and ``usage``, and its key, as PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(names, critical=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _pump(tls: ssl.SSLSocket, plain: socket.socket) -> None:
    """Copy bytes both ways until either side closes; one thread, so the TLS socket is never
    used by two threads at once."""
    tls.setblocking(False)
    plain.setblocking(False)
    ends = {tls: plain, plain: tls}
    with selectors.DefaultSelector() as sel:
        for sock in ends:
            sel.register(sock, selectors.EVENT_READ)
        while True:
            ready = [key.fileobj for key, _ in sel.select(timeout=1.0)]
            if tls.pending():
                ready.append(tls)
            for sock in ready:
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except (ssl.SSLWantReadError, BlockingIOError):
                    continue
                except (ConnectionError, ssl.SSLError, OSError):
                    return
                if not data:
                    return
                ends[sock].setblocking(True)
                try:
                    ends[sock].sendall(data)
                except (ConnectionError, ssl.SSLError, OSError):
                    return
                finally:
                    ends[sock].setblocking(False)


def _linger(tls: ssl.SSLSocket) -> None:
    """Close a connection whose handshake failed once the client has read the alert sent:
    closing with its bytes unread would reset the connection, and the client might see the
    reset instead of the alert (a TLS 1.3 client sends its first request before the server
    has checked its certificate)."""
    with contextlib.suppress(OSError, ValueError):
        socket.socket.shutdown(tls, socket.SHUT_WR)
        tls.settimeout(2)
        while socket.socket.recv(tls, 65536):
            pass
    tls.close()


def _relay(context: ssl.SSLContext, client: socket.socket, backend_port: int) -> None:
    """One connection: the TLS handshake (blocking, so a refused client certificate is told
    with its alert, as a real server does), then the bytes both ways."""
    tls = context.wrap_socket(client, server_side=True, do_handshake_on_connect=False)
    try:
        tls.do_handshake()
    except (ssl.SSLError, OSError):
        _linger(tls)
        return
    try:
        with socket.create_connection(("127.0.0.1", backend_port)) as plain:
            _pump(tls, plain)
    except OSError:
        pass
    finally:
        tls.close()


@contextlib.contextmanager
def tls_proxy(pki: Pki, backend_port: int, *, clients: Path | None = None) -> Iterator[int]:
    """Accept TLS on a free loopback port (yielded) and forward to ``backend_port``; with
    ``clients`` (a CA file), only clients with a certificate that CA signed (mTLS)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.cert, pki.key)
    if clients is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(clients)
    context.set_alpn_protocols(["h2"])
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.5)
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(30)  # the handshake; the relay then waits as long as it likes
            threading.Thread(
                target=_relay, args=(context, client, backend_port), daemon=True
            ).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(30)
        listener.close()

"""The guarded client against real HTTP receivers on loopback: refused by default with nothing
sent, allowed by the setting, checked again at every redirect hop and after DNS resolution."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lockstep.net import GuardedClient, OutboundPolicy, OutboundRefused
from lockstep.settings import Settings
from tests.receivers import HttpReceiver, Redirect, http_receiver

LOOPBACK_ONE = OutboundPolicy(Settings(outbound_allow="127.0.0.1/32").outbound_allow)


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with http_receiver() as service:
        yield service


@pytest.fixture
def elsewhere() -> Iterator[HttpReceiver]:
    """A receiver on another loopback address, which ``LOOPBACK_ONE`` does not allow."""
    with http_receiver(host="127.0.0.2") as service:
        yield service


async def _post(policy: OutboundPolicy, url: str, hops: list[str] | None = None) -> httpx.Response:
    async with (
        GuardedClient(policy, timeout=10) as client,
        client.stream(
            "POST",
            url,
            json={"n": 1},
            headers={"authorization": "Bearer s3cret", "x-api-key": "k3y"},
            on_redirect=lambda status, to: (hops if hops is not None else []).append(to),
        ) as response,
    ):
        await response.aread()
        return response


async def test_a_loopback_url_is_refused_by_default_and_nothing_is_sent(
    receiver: HttpReceiver,
) -> None:
    with pytest.raises(OutboundRefused) as refused:
        await _post(OutboundPolicy(), f"{receiver.url}/hook")
    assert str(refused.value) == (
        f"POST {receiver.url}/hook refused: 127.0.0.1 is a loopback address; "
        "to allow it set LOCKSTEP_OUTBOUND_ALLOW=127.0.0.1/32"
    )
    assert receiver.calls == []


async def test_the_allow_setting_lets_the_call_through(receiver: HttpReceiver) -> None:
    response = await _post(LOOPBACK_ONE, f"{receiver.url}/hook")
    assert response.status_code == 200 and response.json() == {"n": 1}
    assert [(c.method, c.path, c.body) for c in receiver.calls] == [("POST", "/hook", {"n": 1})]


async def test_a_name_resolving_to_loopback_is_refused_after_resolution(
    receiver: HttpReceiver,
) -> None:
    url = receiver.url.replace("127.0.0.1", "localhost")
    with pytest.raises(OutboundRefused) as refused:
        await _post(OutboundPolicy(), f"{url}/hook")
    assert f"POST {url}/hook refused: localhost resolves to " in str(refused.value)
    assert "a loopback address; to allow it set LOCKSTEP_OUTBOUND_ALLOW=" in str(refused.value)
    assert receiver.calls == []
    # allowed, the name reaches the checked address with its own Host header
    await _post(LOOPBACK_ONE, f"{url}/hook")
    assert receiver.calls[0].headers["host"] == url.removeprefix("http://")


async def test_a_redirect_to_a_refused_address_is_refused_at_the_hop(
    receiver: HttpReceiver, elsewhere: HttpReceiver
) -> None:
    receiver.answer = lambda call, n: (307, Redirect(f"{elsewhere.url}/inner"))
    with pytest.raises(OutboundRefused) as refused:
        await _post(LOOPBACK_ONE, f"{receiver.url}/outer")
    assert str(refused.value) == (
        f"POST {elsewhere.url}/inner refused: 127.0.0.2 is a loopback address; "
        "to allow it set LOCKSTEP_OUTBOUND_ALLOW=127.0.0.2/32"
    )
    assert [c.path for c in receiver.calls] == ["/outer"]
    assert elsewhere.calls == []


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:a9fe:a9fe]/",
        "file:///etc/passwd",
    ],
)
async def test_a_redirect_anywhere_refused_sends_nothing_there(
    receiver: HttpReceiver, target: str
) -> None:
    receiver.answer = lambda call, n: (302, Redirect(target))
    with pytest.raises(OutboundRefused) as refused:
        await _post(LOOPBACK_ONE, f"{receiver.url}/outer")
    assert str(refused.value).startswith(f"GET {target} refused: ")
    assert len(receiver.calls) == 1


async def test_allowed_redirects_are_followed_as_browsers_do(
    receiver: HttpReceiver, elsewhere: HttpReceiver
) -> None:
    both = OutboundPolicy(Settings(outbound_allow="127.0.0.1,127.0.0.2").outbound_allow)
    receiver.answer = lambda call, n: (
        (308, Redirect("/second"))
        if call.path == "/first"
        else (303, Redirect(f"{elsewhere.url}/third"))
    )
    hops: list[str] = []
    response = await _post(both, f"{receiver.url}/first", hops)
    assert response.status_code == 200
    assert hops == [f"{receiver.url}/second", f"{elsewhere.url}/third"]
    # 308 keeps the method, body and headers; 303 to another origin is a GET without the body
    # and without any header the caller set (a key may ride in any of them)
    assert [(c.method, c.path, c.body) for c in receiver.calls] == [
        ("POST", "/first", {"n": 1}),
        ("POST", "/second", {"n": 1}),
    ]
    assert receiver.calls[1].headers["authorization"] == "Bearer s3cret"
    assert receiver.calls[1].headers["x-api-key"] == "k3y"
    [third] = elsewhere.calls
    assert (third.method, third.body) == ("GET", None)
    assert not {"authorization", "x-api-key"} & set(third.headers)


async def test_a_redirect_loop_stops_after_a_bounded_number_of_hops(receiver: HttpReceiver) -> None:
    receiver.answer = lambda call, n: (302, Redirect(f"/again/{n}"))
    with pytest.raises(httpx.TooManyRedirects):
        await _post(LOOPBACK_ONE, f"{receiver.url}/loop")
    assert len(receiver.calls) == 6  # the first request and five hops


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x", "gopher://x:70/"])
async def test_a_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(OutboundRefused) as refused:
        await _post(OutboundPolicy(), url)
    assert str(refused.value).endswith("refused: only http:// and https:// URLs are called")


def _certificate_for_localhost(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate naming only ``localhost`` (no IP address), and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def test_https_to_a_name_keeps_the_name_for_tls_while_connecting_to_the_checked_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert_file, key_file = _certificate_for_localhost(tmp_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert_file, key_file)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # trust the test's certificate
    with http_receiver(tls=server_tls) as service:
        by_name = service.url.replace("127.0.0.1", "localhost")
        response = await _post(LOOPBACK_ONE, f"{by_name}/secure")
        assert response.status_code == 200 and response.json() == {"n": 1}
        assert service.calls[0].headers["host"] == by_name.removeprefix("https://")
        # the certificate names localhost, not the address: verification used the name
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            await _post(LOOPBACK_ONE, f"{service.url}/secure")
        assert len(service.calls) == 1

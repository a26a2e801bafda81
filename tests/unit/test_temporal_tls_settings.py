"""The LOCKSTEP_TEMPORAL_TLS* / API key settings as the client's TLS configuration, the one
line a bad combination gets, and the API key kept out of every rendering of the settings."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from lockstep.errors import ConfigError
from lockstep.server.temporal_client import _failure, describe_transport, tls_config
from lockstep.settings import Settings, load_settings
from tests.tls_proxy import make_ca

KEY = "tc-secret-api-key-0123456789"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pki")
    make_ca(folder)
    return folder


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(f"LOCKSTEP_TEMPORAL_{name.upper()}", value)
    return load_settings()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"tls": "true"}, True),
        ({"api_key": KEY}, True),  # an API key implies TLS…
        ({"api_key": KEY, "tls": "false"}, False),  # …unless TLS is explicitly off
    ],
)
def test_tls_is_on_when_asked_or_implied_by_an_api_key(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: bool
) -> None:
    assert tls_config(_settings(monkeypatch, **env)) is expected


def test_the_files_become_the_client_tls_config(monkeypatch: pytest.MonkeyPatch, pki: Path) -> None:
    settings = _settings(
        monkeypatch,
        tls_ca=str(pki / "ca.pem"),
        tls_cert=str(pki / "server.pem"),
        tls_key=str(pki / "server.key"),
        tls_server_name="temporal.internal",
    )
    config = tls_config(settings)
    assert isinstance(config, TLSConfig)
    assert config.server_root_ca_cert == (pki / "ca.pem").read_bytes()
    assert config.client_cert == (pki / "server.pem").read_bytes()
    assert config.client_private_key == (pki / "server.key").read_bytes()
    assert config.domain == "temporal.internal"
    assert describe_transport(settings) == "TLS (own CA), client certificate, API key not set"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"tls_ca": "/nonexistent/ca.pem"}, "LOCKSTEP_TEMPORAL_TLS_CA: cannot read"),
        ({"tls_key": "{pki}/server.key"}, "LOCKSTEP_TEMPORAL_TLS_KEY is set but "),
        ({"tls_cert": "{pki}/server.pem"}, "LOCKSTEP_TEMPORAL_TLS_CERT is set but "),
        ({"tls_ca": "{pki}"}, "LOCKSTEP_TEMPORAL_TLS_CA: cannot read"),
        ({"tls_ca": "{pyproject}"}, "is not a PEM file"),
        ({"tls": "false", "tls_ca": "{pki}/ca.pem"}, "LOCKSTEP_TEMPORAL_TLS is false but"),
    ],
)
def test_a_bad_tls_setting_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, pki: Path, env: dict[str, str], says: str
) -> None:
    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    filled = {k: v.format(pki=pki, pyproject=pyproject) for k, v in env.items()}
    with pytest.raises(ConfigError) as caught:
        tls_config(_settings(monkeypatch, **filled))
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_api_key_is_never_shown(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(monkeypatch, api_key=KEY)
    logging.getLogger("lockstep.test").warning("settings %s %r", settings, settings)
    shown = [repr(settings), str(settings), settings.model_dump_json(), caplog.text]
    assert not [text for text in shown if KEY in text]
    assert describe_transport(settings) == "TLS, API key set"
    # the client still gets the key itself
    assert settings.temporal_api_key is not None
    assert settings.temporal_api_key.get_secret_value() == KEY


#: what the SDK raised, word for word, for each refusal seen through the test terminator
_SEEN = "Failed client connect: `get_system_info` call error after connection: Status {{ {} }}"
ALERT = 'code: Unknown, message: "transport error", source: Some(... error: "received fatal alert: {}" ...)'
CLOSED = 'code: Cancelled, message: "operation was canceled", source: Some(... "connection closed")'


@pytest.mark.parametrize(
    ("raised", "says"),
    [
        (ALERT.format("CertificateRequired"), "the server asks for a client certificate"),
        (ALERT.format("UnknownCA"), "the server does not trust the client certificate's CA"),
        (ALERT.format("BadCertificate"), "the server refused the client certificate"),
        (CLOSED, "closed the connection after the TLS handshake"),
    ],
)
def test_a_refused_client_certificate_is_one_line_naming_its_settings(
    raised: str, says: str
) -> None:
    failure = str(_failure("t:7233", RuntimeError(_SEEN.format(raised)), tls=True))
    assert says in failure and "LOCKSTEP_TEMPORAL_TLS_CERT" in failure
    assert "\n" not in failure and "does it speak TLS" not in failure


def test_a_connection_closed_without_tls_asks_whether_it_speaks_tls() -> None:
    failure = str(_failure("t:7233", RuntimeError(_SEEN.format(CLOSED)), tls=False))
    assert "does it speak TLS? then set LOCKSTEP_TEMPORAL_TLS=true" in failure

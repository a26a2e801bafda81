"""Which addresses outbound HTTP may reach: every spelling of a non-public address is judged
by the address it stands for, and only ``LOCKSTEP_OUTBOUND_ALLOW`` widens the default."""

from __future__ import annotations

import ipaddress

import pytest

from lockstep.errors import ConfigError
from lockstep.net import OutboundPolicy
from lockstep.net.addresses import AddressRefused, allowed_addresses, literal_address
from lockstep.settings import Settings

DEFAULT = OutboundPolicy()


@pytest.mark.parametrize(
    ("host", "address", "refusal"),
    [
        ("127.0.0.1", "127.0.0.1", "a loopback address"),
        ("0x7f.1", "127.0.0.1", "a loopback address"),
        ("2130706433", "127.0.0.1", "a loopback address"),
        ("0177.0.0.1", "127.0.0.1", "a loopback address"),
        ("0x7F000001", "127.0.0.1", "a loopback address"),
        ("127.1", "127.0.0.1", "a loopback address"),
        ("[::1]", "::1", "a loopback address"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1", "a loopback address"),
        ("::ffff:169.254.169.254", "::ffff:a9fe:a9fe", "a link-local address"),
        ("[2002:7f00:1::1]", "2002:7f00:1::1", "a loopback address"),  # 6to4
        ("[64:ff9b::a9fe:a9fe]", "64:ff9b::a9fe:a9fe", "a link-local address"),  # NAT64
        ("169.254.169.254", "169.254.169.254", "a link-local address"),
        ("[fe80::1]", "fe80::1", "a link-local address"),
        ("10.1.2.3", "10.1.2.3", "a private address"),
        ("172.16.0.1", "172.16.0.1", "a private address"),
        ("192.168.1.1", "192.168.1.1", "a private address"),
        ("012.0.0.1", "10.0.0.1", "a private address"),  # octal 012 is 10
        ("[fc00::1]", "fc00::1", "a private address"),
        ("[fd12:3456::1]", "fd12:3456::1", "a private address"),
        ("0.0.0.0", "0.0.0.0", "an unspecified address"),
        ("0", "0.0.0.0", "an unspecified address"),
        ("[::]", "::", "an unspecified address"),
        ("224.0.0.1", "224.0.0.1", "a multicast address"),
        ("[ff02::1]", "ff02::1", "a multicast address"),
        ("240.0.0.1", "240.0.0.1", "a private address"),  # reserved, and private to Python
        ("100.64.0.1", "100.64.0.1", "a non-public address"),  # carrier-grade NAT
        ("93.184.215.14", "93.184.215.14", None),
        ("[2606:4700:4700::1111]", "2606:4700:4700::1111", None),
        ("[::ffff:8.8.8.8]", "::ffff:808:808", None),
    ],
)
def test_every_spelling_is_judged_by_the_address_it_stands_for(
    host: str, address: str, refusal: str | None
) -> None:
    ip = literal_address(host)
    assert ip == ipaddress.ip_address(address)
    assert DEFAULT.refusal(ip) == refusal


@pytest.mark.parametrize("host", ["localhost", "example.org", "0x7g.1", "1.2.3.4.5", "[::1"])
def test_a_name_is_no_literal_and_must_be_resolved(host: str) -> None:
    assert literal_address(host) is None


async def test_localhost_is_refused_after_resolution_naming_the_setting() -> None:
    with pytest.raises(AddressRefused) as refused:
        await allowed_addresses("localhost", 80, DEFAULT)
    assert refused.value.reason.startswith("localhost resolves to ")
    assert "a loopback address; to allow it set LOCKSTEP_OUTBOUND_ALLOW=" in refused.value.reason


async def test_only_the_allowed_addresses_of_a_name_are_connected_to() -> None:
    only_v4 = OutboundPolicy(Settings(outbound_allow="127.0.0.0/8").outbound_allow)
    assert await allowed_addresses("localhost", 80, only_v4) == [ipaddress.ip_address("127.0.0.1")]


def test_the_allow_setting_widens_the_default_and_covers_mapped_forms() -> None:
    policy = OutboundPolicy(
        Settings(outbound_allow="127.0.0.1/32, 10.0.0.0/8,fd00::/8").outbound_allow
    )
    for allowed in ("127.0.0.1", "::ffff:127.0.0.1", "10.9.9.9", "fd00::5", "8.8.8.8"):
        assert policy.refusal(ipaddress.ip_address(allowed)) is None, allowed
    for refused in ("127.0.0.2", "169.254.169.254", "192.168.0.1", "fc00::1", "::1"):
        assert policy.refusal(ipaddress.ip_address(refused)) is not None, refused
    assert DEFAULT.suggestion(ipaddress.ip_address("::ffff:127.0.0.1")) == (
        "LOCKSTEP_OUTBOUND_ALLOW=127.0.0.1/32"
    )


@pytest.mark.parametrize("value", ["bogus", "10.0.0.1/8", "127.0.0.1/33", "10.0.0.0/8;1.2.3.4"])
def test_a_bad_allow_setting_is_one_config_error_naming_the_part(value: str) -> None:
    with pytest.raises(ConfigError) as bad:
        Settings(outbound_allow=value)
    message = str(bad.value)
    assert message.startswith("LOCKSTEP_OUTBOUND_ALLOW: '") and "\n" not in message
    assert "is not an address range" in message


def test_the_default_allows_public_addresses_only() -> None:
    assert Settings().outbound_allow == ()

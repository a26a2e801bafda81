"""SecretBox: values encrypted per (project, name), keys from the environment or a 0600 file."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from lockstep.errors import ConfigError, InvalidRequest
from lockstep.secrets.crypto import KEY_FILE, SecretBox, SecretError

VALUE = "s3cr3t-VALUE-\u00e9\u6f22-line1\nline2"


@pytest.fixture
def box() -> SecretBox:
    return SecretBox.generate()


def test_round_trip_and_ciphertext_hides_the_value(box: SecretBox) -> None:
    ct = box.encrypt("default", "TOKEN", VALUE)
    assert box.decrypt("default", "TOKEN", ct) == VALUE
    assert "s3cr3t" not in ct and "line2" not in ct
    # a fresh IV every time: equal values do not give equal ciphertexts
    assert box.encrypt("default", "TOKEN", VALUE) != ct


@pytest.mark.parametrize(("project", "name"), [("default", "OTHER"), ("team", "TOKEN")])
def test_ciphertext_moved_to_another_row_does_not_decrypt(
    box: SecretBox, project: str, name: str
) -> None:
    ct = box.encrypt("default", "TOKEN", VALUE)
    with pytest.raises(SecretError) as info:
        box.decrypt(project, name, ct)
    assert name in str(info.value)
    assert "s3cr3t" not in str(info.value)
    assert info.value.name == name and info.value.project == project


def test_row_identity_is_unambiguous(box: SecretBox) -> None:
    # ("a\0b", "C") and ("a", "b\0C") must not share a key
    ct = box.encrypt("a\0b", "C", VALUE)
    with pytest.raises(SecretError):
        box.decrypt("a", "b\0C", ct)


def test_wrong_key_fails_without_showing_the_value(box: SecretBox) -> None:
    ct = box.encrypt("default", "TOKEN", VALUE)
    with pytest.raises(SecretError) as info:
        SecretBox.generate().decrypt("default", "TOKEN", ct)
    message = str(info.value)
    assert "TOKEN" in message and "lockstep secrets set TOKEN" in message
    assert "s3cr3t" not in message and ct not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize(
    "mangle",
    [
        lambda ct: ct[:-5] + ("A" if ct[-5] != "A" else "B") + ct[-4:],
        lambda ct: ct.removeprefix("v1:"),
        lambda ct: ct[:20],
        lambda ct: "v1:\u00e9\u00e9",
        lambda ct: "",
    ],
)
def test_tampered_ciphertext_fails(box: SecretBox, mangle: object) -> None:
    ct = box.encrypt("default", "TOKEN", VALUE)
    assert callable(mangle)
    with pytest.raises(SecretError):
        box.decrypt("default", "TOKEN", mangle(ct))


def test_unencodable_value_is_rejected_without_echoing_it(box: SecretBox) -> None:
    with pytest.raises(InvalidRequest) as info:
        box.encrypt("default", "TOKEN", "abc\udc80def-hidden")
    assert "hidden" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_repr_hides_the_key() -> None:
    key = Fernet.generate_key().decode()
    box = SecretBox.from_settings(key, Path("/nonexistent"))
    assert key not in repr(box) and key[:10] not in repr(box)


def test_key_from_environment_is_shared(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    one = SecretBox.from_settings(key, tmp_path)
    two = SecretBox.from_settings(f"  {key}\n", tmp_path / "elsewhere")
    assert two.decrypt("p", "N", one.encrypt("p", "N", VALUE)) == VALUE
    assert not (tmp_path / KEY_FILE).exists()  # the env key wins; no file is made


@pytest.mark.parametrize(
    "bad",
    ["", "not-a-key", Fernet.generate_key().decode()[:-2], "!" * 43 + "=", "A" * 44 + "="],
    ids=["empty", "word", "truncated", "not-base64", "too-long"],  # stable across processes
)
def test_bad_environment_key_is_a_config_error(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        SecretBox.from_settings(bad, tmp_path)
    message = str(info.value)
    assert message.startswith("LOCKSTEP_SECRET_KEY is not a valid key; generate one with")
    assert "Fernet.generate_key()" in message
    if bad:
        assert bad not in message


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    one = SecretBox.from_settings(None, home)
    path = home / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in home.iterdir() if p.name != KEY_FILE]  # no temp file left
    two = SecretBox.from_settings(None, home)
    assert two.decrypt("p", "N", one.encrypt("p", "N", VALUE)) == VALUE


def test_concurrent_first_use_agrees_on_one_key(tmp_path: Path) -> None:
    boxes: list[SecretBox] = []
    start = threading.Barrier(8)

    def make() -> None:
        start.wait()
        boxes.append(SecretBox.from_settings(None, tmp_path))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ct = boxes[0].encrypt("p", "N", VALUE)
    assert all(b.decrypt("p", "N", ct) == VALUE for b in boxes)


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    SecretBox.from_settings(None, tmp_path)
    path = tmp_path / KEY_FILE
    path.chmod(mode)
    with pytest.raises(ConfigError) as info:
        SecretBox.from_settings(None, tmp_path)
    assert f"chmod 600 {path}" in str(info.value)


def test_damaged_key_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    path.write_text("garbage\n")
    path.chmod(0o600)
    with pytest.raises(ConfigError) as info:
        SecretBox.from_settings(None, tmp_path)
    assert str(path) in str(info.value) and "garbage" not in str(info.value)

"""Pure validation of remote URLs, ref names and SHAs: hostile values never reach git."""

from __future__ import annotations

import pytest

from lockstep.errors import LockstepError
from lockstep.spec.git_names import (
    GitError,
    check_ref_name,
    check_sha,
    mask_credentials,
    parse_remote,
)

GOOD = [
    ("https://github.com/acme/flows.git", "https"),
    ("https://git.example.com:8443/a/b", "https"),
    ("ssh://git@github.com/acme/flows.git", "ssh"),
    ("ssh://git@[::1]:2222/acme/flows.git", "ssh"),
    ("git@github.com:acme/flows.git", "ssh"),
    ("git://127.0.0.1:9418/repo.git", "git"),
]


@pytest.mark.parametrize(("url", "scheme"), GOOD)
def test_good_urls(url: str, scheme: str) -> None:
    remote = parse_remote(url)
    assert remote.scheme == scheme
    assert remote.url == url
    assert remote.display == url
    assert len(remote.key) == 32


def test_opt_in_schemes() -> None:
    with pytest.raises(GitError, match="plain http"):
        parse_remote("http://example.com/r.git")
    assert parse_remote("http://example.com/r.git", allow_http=True).scheme == "http"
    with pytest.raises(GitError, match="file://"):
        parse_remote("file:///srv/repo.git")
    assert parse_remote("file:///srv/repo.git", allow_file=True).scheme == "file"


HOSTILE = [
    "",
    " https://github.com/a/b",
    "https://github.com/a/b\n",
    "https://github.com/a/b\x00",
    "https://github.com/a%0ab",
    "ext::sh -c touch% /tmp/pwned",
    "ext::sh",
    "fd::17",
    "fd::17/foo",
    "::foo",
    "foo+bar::https://x/y",
    "--upload-pack=touch /tmp/pwned",
    "-oProxyCommand=touch /tmp/pwned",
    "-",
    "ssh://-oProxyCommand=touch%20x/repo",
    "ssh://host/-repo",
    "git@-oProxyCommand=x:repo",
    "git@host:-repo",
    "git@host:--upload-pack=x",
    "file:///etc",
    "file://remote-host/etc",
    "gopher://example.com/x",
    "javascript://x/y",
    "/srv/repo.git",
    "../repo",
    "repo",
    "host:path",
    "https://user:pass@github.com/a/b",
    "https://token@github.com/a/b",
    "ssh://git:pw@github.com/a/b",
    "git://user@host/repo",
    "https://github.com",
    "https:///a/b",
    "https://github.com/a/b?x=1",
    "https://github.com/a/b#frag",
    "https://github.com:notaport/a",
    "https://github.com:0/a",
]


@pytest.mark.parametrize("url", HOSTILE)
def test_hostile_urls_rejected(url: str) -> None:
    with pytest.raises(GitError) as info:
        parse_remote(url, allow_http=True)
    err = info.value
    assert isinstance(err, LockstepError)
    assert err.kind == "git"
    message = str(err)
    assert "\n" not in message
    assert "pass" not in message or "password" in message


def test_credentials_error_is_masked_and_helpful() -> None:
    with pytest.raises(GitError) as info:
        parse_remote("https://alice:hunter2@github.com/a/b")
    assert "hunter2" not in str(info.value)
    assert "alice" not in str(info.value)
    assert "--credentials SECRET" in str(info.value)


def test_with_credentials_https_only() -> None:
    remote = parse_remote("https://github.com/a/b.git")
    auth = remote.with_credentials("x-access-token", "t0k/en@:#")
    assert auth == "https://x-access-token:t0k%2Fen%40%3A%23@github.com/a/b.git"
    assert "t0k" not in remote.url and "t0k" not in repr(remote)
    for url in ("ssh://git@github.com/a/b", "git://h/r", "git@h:r"):
        with pytest.raises(GitError, match="only be used with https"):
            parse_remote(url).with_credentials("u", "t")
    with pytest.raises(GitError, match="credentials secret"):
        remote.with_credentials("u", "bad\ntoken")


def test_mask_credentials() -> None:
    text = "fatal: unable to access 'https://u:s3cret@h/r/': 403 and ssh://a@b/c"
    masked = mask_credentials(text)
    assert "s3cret" not in masked
    assert "https://***@h/r/" in masked


@pytest.mark.parametrize(
    "ref", ["main", "feature/x-1", "v1.2.3", "refs/heads/main", "release/2024.01", "a@b", "ü"]
)
def test_good_refs(ref: str) -> None:
    assert check_ref_name(ref) == ref


BAD_REFS = [
    "",
    "--output=/tmp/x",
    "-b",
    "refs/../../x",
    "main..x",
    "a@{1}",
    "@",
    "HEAD",
    "a b",
    "a\tb",
    "a\x00b",
    "a\x7fb",
    "a~1",
    "a^",
    "a:b",
    "a?",
    "a*",
    "a[b",
    "a\\b",
    "x.lock",
    "x.lock/y",
    "x/",
    "/x",
    "a//b",
    ".hidden",
    "a/.b",
    "a.",
    "x" * 2000,
]


@pytest.mark.parametrize("ref", BAD_REFS)
def test_bad_refs(ref: str) -> None:
    with pytest.raises(GitError) as info:
        check_ref_name(ref)
    assert info.value.reason == "invalid-ref"
    assert "\n" not in str(info.value)


def test_shas() -> None:
    assert check_sha("ABCDEF1") == "abcdef1"
    assert check_sha("a" * 40) == "a" * 40
    assert check_sha("b" * 64) == "b" * 64
    for bad in ["abc123", "g" * 40, "a" * 41, "a" * 63, "-abcdef1", "abcdef1\n", "", "a" * 65]:
        with pytest.raises(GitError, match="invalid commit SHA"):
            check_sha(bad)

"""Validation of everything a user can hand to git: remote URLs, ref names and commit SHAs.

Every check here runs before git is spawned, so a hostile value (``ext::sh -c …``,
``--upload-pack=…``, ``refs/../../x``) never reaches a git command line. Credentials are never
part of a stored URL: they come from a project secret and are combined only at the last moment.

In ``spec`` because a workflow's ``sources:`` are checked with this grammar before anything
runs; the registry (above spec) imports it from here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from lockstep.errors import InvalidRequest

ALLOWED_SCHEMES = ("https", "http", "ssh", "git", "file")

# git treats ``<word>::<address>`` as "run git-remote-<word>", e.g. ext:: runs a shell command;
# this mirrors the scan in git's transport_get() so nothing git would see as a helper gets in.
_TRANSPORT_HELPER = re.compile(r"^[A-Za-z0-9+.\-]*::")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
# scp-like syntax ``user@host:path``; git uses it when a colon comes before any slash.
_SCP = re.compile(
    r"^([A-Za-z0-9_][A-Za-z0-9._\-]*)@([A-Za-z0-9][A-Za-z0-9.\-]*|\[[0-9A-Fa-f:.]+\]):(.+)\Z"
)
_HOST = re.compile(
    r"^([A-Za-z0-9]([A-Za-z0-9\-]*[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9\-]*[A-Za-z0-9])?)*\.?\Z"
)
_IPV6 = re.compile(r"^\[[0-9A-Fa-f:.]+\]\Z")
_SHA = re.compile(r"^(?:[0-9a-f]{7,40}|[0-9a-f]{64})\Z")
_CREDENTIALS_IN_TEXT = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)[^/@\s]*@")
_REF_FORBIDDEN = set("~^:?*[\\ ")


class GitError(InvalidRequest):
    """Anything that went wrong validating input for git or running it. Never holds credentials.
    A request the user can fix (the URL, the ref, the path, access to the repository): HTTP
    400, exit 2.

    ``reason`` is a stable sub-kind callers can branch on without parsing the message, e.g.
    ``invalid-url``, ``invalid-ref``, ``timeout``, ``unreachable``, ``not-found``, ``too-large``.
    """

    kind = "git"

    def __init__(self, message: str, *, reason: str = "failed") -> None:
        super().__init__(message)
        self.reason = reason


def mask_credentials(text: str) -> str:
    """Replace the userinfo of every URL in ``text`` with ``***`` so it can be shown or logged."""
    return _CREDENTIALS_IN_TEXT.sub(r"\1***@", text)


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F or c.isspace() for c in text)


def _bad_url(url: str, why: str, fix: str) -> GitError:
    shown = mask_credentials(url)
    shown = "".join(c if c.isprintable() and not c.isspace() else "?" for c in shown)[:200]
    return GitError(f"remote URL {shown!r} {why}; {fix}", reason="invalid-url")


@dataclass(frozen=True)
class RemoteUrl:
    """A remote URL that passed validation. ``url`` never contains credentials."""

    url: str
    scheme: str  # one of ALLOWED_SCHEMES; scp-like ``user@host:path`` is reported as "ssh"
    display: str  # safe to show in errors, logs and the UI

    @property
    def key(self) -> str:
        """Stable identifier of the repository, used to name its mirror on disk."""
        return hashlib.sha256(self.url.encode()).hexdigest()[:32]

    def with_credentials(self, username: str, token: str) -> str:
        """The URL with ``username:token`` embedded, for handing to git at the last moment.

        Only for https: over plain http, ssh or git the token would travel unprotected or mean
        nothing. The result must never be stored or logged.
        """
        if self.scheme != "https":
            raise GitError(
                f"credentials can only be used with https remotes, not {self.scheme}:// "
                f"({self.display}); use an https URL or drop --credentials",
                reason="invalid-url",
            )
        if not username or not token or _has_control(username) or _has_control(token):
            raise GitError(
                "the credentials secret must hold a non-empty username and token without "
                "whitespace or control characters; update the secret",
                reason="invalid-credentials",
            )
        rest = self.url[len("https://") :]
        return f"https://{quote(username, safe='')}:{quote(token, safe='')}@{rest}"


def parse_remote(url: str, *, allow_http: bool = False, allow_file: bool = False) -> RemoteUrl:
    """Validate a user-supplied remote URL; raise ``GitError`` saying what is wrong otherwise."""
    if not url:
        raise GitError(
            "remote URL is empty; give an https://, ssh:// or git:// URL", reason="invalid-url"
        )
    if "\x00" in url or _has_control(url) or _has_control(unquote(url)):
        raise _bad_url(
            url,
            "contains whitespace or control characters",
            "remove them (encode spaces in paths as %20)",
        )
    if url.startswith("-"):
        raise _bad_url(
            url,
            "starts with '-' and would be read as a git option",
            "give an https://, ssh:// or git:// URL",
        )
    if _TRANSPORT_HELPER.match(url):
        raise _bad_url(
            url,
            "uses a git transport helper (<name>::), which can run commands",
            "give an https://, ssh:// or git:// URL",
        )
    match = _SCHEME.match(url)
    if match is None:
        return _parse_scp(url)
    scheme = match.group(1).lower()
    if scheme not in ALLOWED_SCHEMES:
        raise _bad_url(
            url,
            f"uses unsupported scheme {scheme!r}",
            "use one of https, ssh, git (http and file only when enabled)",
        )
    if scheme == "http" and not allow_http:
        raise _bad_url(
            url,
            "uses plain http, which is disabled",
            "use https, or set LOCKSTEP_GIT_ALLOW_HTTP=1 for the server and every worker",
        )
    if scheme == "file" and not allow_file:
        raise _bad_url(
            url,
            "uses file://, which is disabled",
            "use a network URL, or set LOCKSTEP_GIT_ALLOW_FILE=1 for the server and every worker",
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _bad_url(url, f"is malformed ({exc})", "check the host and port") from None
    if parts.query or parts.fragment or "#" in url or "?" in url:
        raise _bad_url(url, "has a query string or fragment", "remove the part after ? or #")
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        if scheme != "ssh" or ":" in userinfo:
            raise _bad_url(
                url, "contains credentials", "remove them and use --credentials SECRET instead"
            )
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._\-]*", userinfo):
            raise _bad_url(url, "has an invalid ssh user name", "use e.g. ssh://git@host/repo")
    path = parts.path
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not path.startswith("/"):
            raise _bad_url(url, "is not a local absolute path", "use file:///absolute/path")
    else:
        host = parts.hostname or ""
        bracketed = parts.netloc.rpartition("@")[2].startswith("[")
        if not host or not (_HOST.match(host) or (bracketed and _IPV6.match(f"[{host}]"))):
            raise _bad_url(url, "has no valid host name", "use e.g. https://host/owner/repo.git")
        if port == 0:
            raise _bad_url(url, "has port 0", "use a real port or leave it out")
        if not path or path == "/":
            raise _bad_url(url, "names no repository path", "add the repository path")
    if any(seg.startswith("-") for seg in path.split("/")):
        raise _bad_url(url, "has a path segment starting with '-'", "rename the repository path")
    return RemoteUrl(url=url, scheme=scheme, display=url)


def _parse_scp(url: str) -> RemoteUrl:
    match = _SCP.match(url)
    if match is None or "/" in url.split(":", 1)[0]:
        raise _bad_url(
            url, "is neither a URL nor user@host:path", "give an https://, ssh:// or git:// URL"
        )
    user, host, path = match.groups()
    if ":" in user or path.startswith("-") or host.startswith("-"):
        raise _bad_url(url, "is not a valid user@host:path", "use ssh://user@host/path")
    if host.startswith("[") and not _IPV6.match(host):
        raise _bad_url(url, "has an invalid host", "use ssh://user@host/path")
    if any(seg.startswith("-") for seg in path.split("/")):
        raise _bad_url(url, "has a path segment starting with '-'", "rename the repository path")
    return RemoteUrl(url=url, scheme="ssh", display=url)


def check_ref_name(ref: str) -> str:
    """Validate a branch or tag name as ``git check-ref-format --branch`` would, stricter.

    Full names (``refs/heads/main``) pass too. Returns ``ref`` unchanged.
    """
    why = _ref_problem(ref)
    if why:
        shown = "".join(c if c.isprintable() else "?" for c in ref)[:200]
        raise GitError(
            f"invalid ref name {shown!r}: {why}; give a branch, tag or commit SHA",
            reason="invalid-ref",
        )
    return ref


def _ref_problem(ref: str) -> str:
    if not ref:
        return "it is empty"
    if len(ref) > 1024:
        return "it is longer than 1024 characters"
    if ref.startswith("-"):
        return "it starts with '-'"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in ref):
        return "it contains control characters"
    bad = sorted(set(ref) & _REF_FORBIDDEN)
    if bad:
        return "it contains " + " ".join(repr(c) for c in bad)
    if ".." in ref:
        return "it contains '..'"
    if "@{" in ref:
        return "it contains '@{'"
    if ref in ("@", "HEAD"):
        return f"{ref!r} is not a branch or tag"
    if ref.startswith("/") or ref.endswith("/") or "//" in ref:
        return "it has an empty path component"
    if ref.endswith("."):
        return "it ends with '.'"
    for part in ref.split("/"):
        if part.startswith("."):
            return "a component starts with '.'"
        if part.endswith(".lock"):
            return "a component ends with '.lock'"
    return ""


def check_sha(sha: str) -> str:
    """Validate a commit SHA or prefix (7-40 hex, or 64 hex for SHA-256); returns it lowercased."""
    if not _SHA.match(sha.lower()) or not sha.isascii():
        shown = "".join(c if c.isprintable() else "?" for c in sha)[:80]
        raise GitError(
            f"invalid commit SHA {shown!r}: expected 7 to 40 (or 64) hex digits",
            reason="invalid-ref",
        )
    return sha.lower()


def is_sha(text: str) -> bool:
    """True if ``text`` looks like a commit SHA or an abbreviation of one."""
    return text.isascii() and bool(_SHA.match(text.lower()))

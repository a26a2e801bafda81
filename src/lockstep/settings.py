"""All configuration, read once from ``LOCKSTEP_*`` environment variables.

Nothing else in lockstep reads ``os.environ`` for its own options.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from lockstep.errors import ConfigError

HOME_DIR_NAME = ".lockstep"
#: files only a used home holds: a repository's ``.lockstep/*.yaml`` workflows are no home
_HOME_MARKERS = ("lock", "lockstep.db", "server.json", "temporal.json")
#: nobody:nogroup, the user a container runs as when neither the step nor the image names one
DEFAULT_CONTAINER_USER = "65534:65534"
#: who a container may run as (a step's ``user:``, ``LOCKSTEP_CONTAINER_USER``): uid[:gid] or
#: name[:group]
CONTAINER_USER_PATTERN = r"^[A-Za-z0-9_.-]{1,64}(:[A-Za-z0-9_.-]{1,64})?$"


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str, setting: str) -> tuple[IPNetwork, ...]:
    """``10.0.0.0/8,127.0.0.1`` as networks (a bare address is a single-address range); a
    ``ConfigError`` naming ``setting`` and the bad part otherwise."""
    networks: list[IPNetwork] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part))
        except ValueError as exc:
            raise ConfigError(
                f"{setting}: {part!r} is not an address range ({exc}); write ranges like "
                "127.0.0.1/32,10.0.0.0/8,fd00::/8 separated by commas"
            ) from None
    return tuple(networks)


def _is_home(path: Path) -> bool:
    return any((path / marker).exists() for marker in _HOME_MARKERS)


def find_home(cwd: Path) -> Path:
    """The home of the project ``cwd`` is in, found as git finds ``.git``: the nearest
    ancestor holding a ``.lockstep`` directory that is a home; else ``.lockstep`` at the top of the
    enclosing git work tree; else ``./.lockstep``. Nothing is created here."""
    git_top: Path | None = None
    for folder in (cwd, *cwd.parents):
        if _is_home(folder / HOME_DIR_NAME):
            return folder / HOME_DIR_NAME
        if git_top is None and (folder / ".git").exists():
            git_top = folder
    return (git_top or cwd) / HOME_DIR_NAME


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOCKSTEP_", extra="ignore", frozen=True)

    home: Path = Field(
        default_factory=lambda: find_home(Path.cwd()),
        description="data directory holding all local state; found as git finds .git",
    )
    url: str | None = Field(None, description="a lockstep server to talk to instead of embedded")
    database_url: str | None = Field(None, description="SQLAlchemy URL; SQLite in home if unset")
    temporal_address: str | None = Field(None, description="host:port of a Temporal cluster")
    temporal_namespace: str = Field("default", min_length=1, max_length=255)
    #: an external Temporal over TLS (a cluster, Temporal Cloud): unset means on when an API key
    #: is set, off otherwise; the CA file verifies the server (else the system's CAs); a client
    #: certificate and key (both or neither) are for mTLS; the server name overrides the host
    #: the certificate must name. Built into the client in one place (``server/temporal_client``)
    temporal_tls: bool | None = None
    temporal_tls_ca: Path | None = Field(None, description="PEM file of the server's CA")
    temporal_tls_cert: Path | None = Field(None, description="PEM client certificate (mTLS)")
    temporal_tls_key: Path | None = Field(None, description="PEM key of the client certificate")
    temporal_tls_server_name: str | None = None
    #: a Temporal Cloud API key; a secret: never logged, printed or served by the API
    temporal_api_key: SecretStr | None = None
    #: dev-server dynamic config; raising the transfer poll rate cuts per-step latency ~3x
    temporal_dynamic_config: list[str] = Field(
        default_factory=lambda: [
            "history.transferProcessorMaxPollRPS=1000",
            "history.timerProcessorMaxPollRPS=1000",
            "matching.numTaskqueueReadPartitions=1",
            "matching.numTaskqueueWritePartitions=1",
        ]
    )
    #: the interpreter's task queue; sharing pool 'default's queue lets Temporal dispatch a
    #: default-pool step eagerly to the server's own worker (one round trip less a step)
    control_queue: str = "lockstep-pool-default"
    heartbeat_timeout: float = Field(30.0, gt=0, le=600, description="seconds")
    #: the NATS JetStream broker of `stream` channels; unset: the server starts an embedded
    #: one in its home when a deployment first needs a stream edge
    nats_url: str | None = Field(None, pattern=r"^(nats|tls)://\S+$")
    #: a deployment replica whose worker sends no heartbeat for this long is started again
    #: on another worker of its pool
    replica_heartbeat_timeout: float = Field(30.0, ge=2, le=600, description="seconds")
    #: slow or stalled HTTP clients: a request head must arrive within ``http_header_timeout``
    #: of its first byte, a body within ``http_body_timeout`` of the head plus a second per
    #: 64 KiB received (else 408, connection closed); past ``http_max_connections`` open
    #: connections a request gets 503
    http_header_timeout: float = Field(30.0, gt=0, le=3600, description="seconds")
    http_body_timeout: float = Field(300.0, gt=0, le=86400, description="seconds")
    http_max_connections: int = Field(1000, ge=1, le=100_000)
    #: how often the server starts queued runs that have no workflow yet (the engine was down)
    reconcile_interval: float = Field(10.0, gt=0, le=3600, description="seconds")
    #: a schedule trigger firing more often than this is refused when its version goes live
    schedule_min_interval: float = Field(60.0, gt=0, le=86400, description="seconds")
    #: how many upstream-fired runs may follow one another (A fires B fires C…) before the
    #: next fire is recorded failed instead of making a run
    upstream_max_depth: int = Field(10, ge=1, le=1000)
    #: how deep ``workflow:`` steps may nest child runs (a run's child's child…)
    child_max_depth: int = Field(10, ge=1, le=100)
    kill_grace: float = Field(5.0, ge=0, le=300, description="SIGTERM → SIGKILL, seconds")
    #: how a worker starts each attempt's supervisor: forked by one zygote process per worker
    #: (fast), or a new interpreter per attempt
    spawner: Literal["zygote", "direct"] = "zygote"
    #: run the interpreter's workflow code in Temporal's sandbox, which refuses anything
    #: non-deterministic (its own tests run with it on); off, each step costs ~2 ms less CPU
    workflow_sandbox: bool = False
    #: how `lockstep server` and `lockstep worker` write their own log (stderr): ``text``
    #: (``LEVEL event key=value …``) or ``json`` (one object a line: ts, level, event, fields)
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "warning"
    worker_concurrency: int = Field(16, ge=1, le=1000)
    max_spec_bytes: int = 1024 * 1024
    max_snapshot_bytes: int = 200 * 1024 * 1024
    max_artifact_bytes: int = 10 * 1024**3
    #: the largest delivery a webhook trigger (and the git push hook) accepts; larger: 413
    max_webhook_bytes: int = Field(1024 * 1024, ge=1024, le=100 * 1024 * 1024)
    #: where artifacts go: s3://bucket/prefix (credentials from the usual AWS_* variables);
    #: unset keeps them in the home's blob directory
    artifacts: str | None = Field(None, pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,62}(/.*)?$")
    s3_endpoint: str | None = Field(None, description="an S3-compatible endpoint URL")
    max_log_bytes: int | None = None
    #: where step logs are kept; unset: the home's `logs` directory. Several servers on one
    #: database must share it (a shared filesystem): any server answers any run's logs
    logs_dir: Path | None = None
    project: str = "default"
    #: git remotes: file:// and plain http are refused unless enabled (tests, trusted LANs)
    git_allow_file: bool = False
    git_allow_http: bool = False
    git_timeout: float = Field(60.0, gt=0, le=3600, description="seconds per git call")
    #: key for secrets at rest (Fernet); a generated owner-only key file in the home if unset
    secret_key: SecretStr | None = None
    token: str | None = Field(
        None, description="API token for LOCKSTEP_URL (else `lockstep login`)"
    )
    config_dir: Path = Field(Path("~/.config/lockstep"), description="where `login` keeps tokens")
    #: Docker Engine API of the worker's container runtime (Docker, or Podman's service)
    container_host: str | None = Field(
        None, description="e.g. unix:///run/podman.sock; else DOCKER_HOST, else Docker's socket"
    )
    #: outbound HTTP (http steps) reaches public addresses only, plus these ranges
    outbound_allow: Annotated[tuple[IPNetwork, ...], NoDecode] = Field(
        (), description="comma-separated address ranges outbound HTTP may reach, e.g. 10.0.0.0/8"
    )
    #: where people open runs: notifications link to {public_url}/runs/{id} (else the API's URL)
    public_url: str | None = Field(None, pattern=r"^https?://[^\s]+$")
    #: notification deliveries: the first retry after this many seconds, doubling each time,
    #: at most ``notify_max_attempts`` attempts; due deliveries are looked for this often
    notify_backoff: float = Field(5.0, gt=0, le=3600, description="seconds")
    notify_max_attempts: int = Field(8, ge=1, le=50)
    notify_interval: float = Field(1.0, gt=0, le=60, description="seconds")
    #: who containers run as when neither the step (`user:`) nor the image (USER) says
    container_user: str = Field(
        DEFAULT_CONTAINER_USER,
        pattern=CONTAINER_USER_PATTERN,
        description="uid[:gid] or name[:group]",
    )

    @field_validator("outbound_allow", mode="before")
    @classmethod
    def _outbound_allow(cls, value: Any) -> Any:
        # a ConfigError is no ValueError: pydantic lets it through as the one line it is
        return parse_networks(value, "LOCKSTEP_OUTBOUND_ALLOW") if isinstance(value, str) else value

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def step_logs_dir(self) -> Path:
        return self.logs_dir.expanduser().resolve() if self.logs_dir else self.home_dir / "logs"

    def container_url(self) -> str:
        # DOCKER_HOST is the convention every Docker client follows; honour it as they do
        return self.container_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"

    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home_dir / 'lockstep.db'}"

    def database_mark(self) -> str:
        """Which database this process uses, shown without its address or password: a worker
        beside a server compares it with the server's (``server.json``)."""
        return hashlib.sha256(self.sqlalchemy_url().encode()).hexdigest()[:16]


def load_settings(**overrides: Any) -> Settings:
    """The settings from the environment (and ``overrides``, from command-line options); a bad
    value is one ``ConfigError`` naming the variable, never pydantic's report."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = exc.errors()
        first = problems[0]
        name = f"LOCKSTEP_{str(first['loc'][0]).upper()}" if first["loc"] else "a setting"
        said = str(first["msg"])
        said = said[:1].lower() + said[1:]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(f"{name} is invalid: {said}; fix or unset it{more}") from None


#: worker pool names: they become part of a Temporal task queue name
POOL_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


def pool_queue(pool: str) -> str:
    """The Temporal task queue that serves worker pool ``pool``."""
    return f"lockstep-pool-{pool}"


def child_queue(control_queue: str) -> str:
    """The task queue of ``workflow:`` steps' attempts: the control plane's (a pool name
    cannot hold a '.', so no pool's queue is ever this one)."""
    return f"{control_queue}.children"

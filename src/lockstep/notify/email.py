"""Email over SMTP: always STARTTLS (the certificate checked against the host's name) before
anything else is said, a user and a password from a project secret. The host is resolved and
its address checked against the server's ``OutboundPolicy`` before connecting, and the
connection goes to that checked address."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from lockstep.errors import InvalidRequest
from lockstep.net.addresses import AddressRefused, IPAddress, OutboundPolicy, allowed_addresses
from lockstep.notify.base import DeliveryFailed, Message, parsed, secret_ref

TIMEOUT_S = 30.0
Address = Annotated[
    str, StringConstraints(pattern=r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$", max_length=254)
]
Host = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.:\[\]-]{1,253}$")]


class EmailSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    host: Host
    port: int = Field(587, ge=1, le=65535)
    sender: Address = Field(alias="from")
    to: list[Address] = Field(min_length=1, max_length=20)
    username: str | None = Field(None, max_length=254)
    #: the project secret holding the password (never the password)
    password: str | None = None


class EmailChannel:
    kind = "email"

    def check(self, settings: Mapping[str, Any], policy: OutboundPolicy) -> dict[str, Any]:
        got = parsed(self.kind, EmailSettings, settings)
        if got.password is not None:
            secret_ref(self.kind, "password", got.password)
            if not got.username:
                raise InvalidRequest("email channel: 'password' needs a 'username'")
        return got.model_dump(by_alias=True)

    def secret_names(self, settings: Mapping[str, Any]) -> list[str]:
        return [str(settings["password"])] if settings.get("password") else []

    async def send(
        self,
        settings: Mapping[str, Any],
        message: Message,
        secrets: Mapping[str, str],
        policy: OutboundPolicy,
    ) -> None:
        got = EmailSettings.model_validate(dict(settings))
        try:
            addresses = await allowed_addresses(got.host, got.port, policy)
        except AddressRefused as exc:
            raise DeliveryFailed(f"refused: {exc.reason}", retry=False) from None
        except socket.gaierror as exc:
            raise DeliveryFailed(f"cannot resolve {got.host}: {exc.strerror}") from None
        mail = EmailMessage()
        mail["Subject"] = f"[lockstep] {message.title}"
        mail["From"] = got.sender
        mail["To"] = ", ".join(got.to)
        mail.set_content(message.text() + "\n")
        password = secrets[got.password] if got.password else None
        await asyncio.to_thread(_send, got, addresses[0], mail, password)


class _SMTP(smtplib.SMTP):
    """Connects to a checked address while STARTTLS verifies the certificate for the name."""

    def __init__(self, name: str) -> None:
        super().__init__(timeout=TIMEOUT_S)
        self._name = name

    def connect(self, host: str = "localhost", port: int = 0, source_address: Any = None) -> Any:
        answer = super().connect(host, port, source_address)
        self._host = self._name  # smtplib hands _host to wrap_socket as the server name
        return answer


def _send(got: EmailSettings, address: IPAddress, mail: EmailMessage, password: str | None) -> None:
    try:
        with _SMTP(got.host.strip("[]")) as smtp:
            smtp.connect(str(address), got.port)
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise DeliveryFailed(
                    f"{got.host} does not offer STARTTLS; mail is sent encrypted only"
                )
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
            if got.username and password is not None:
                smtp.login(got.username, password)
            smtp.send_message(mail)
    except (smtplib.SMTPException, OSError) as exc:  # ssl.SSLError is an OSError
        said = " ".join(str(exc).split()) or type(exc).__name__
        raise DeliveryFailed(f"SMTP {got.host}:{got.port}: {said}") from None

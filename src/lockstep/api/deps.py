"""Request dependencies: the services container and the caller's project."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from lockstep.services.runs import RunService
from lockstep.settings import Settings
from lockstep.storage.blobs import BlobStore


@dataclass(frozen=True)
class Services:
    settings: Settings
    runs: RunService
    blobs: BlobStore


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def project(request: Request) -> str:
    # a single project until authentication and tenancy arrive (issue 3)
    svc: Services = request.app.state.services
    return svc.settings.project

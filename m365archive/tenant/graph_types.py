"""The Graph request a Change carries, and what came back. Sent by `graph.GraphGateway.send`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class GraphRequest:
    """An exact Graph v1.0 request: method, path relative to the version root, JSON body."""

    method: str
    path: str  # e.g. "/users/{id}/assignLicense"
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def http_line(self) -> str:
        return f"{self.method} /v1.0{self.path}"


@dataclass
class GraphResponse:
    status: int
    body: dict[str, Any] | None
    request_id: str | None = None


class GraphError(Exception):
    """A Graph error response: `status`, Graph's `code` and `message`, the request-id."""

    def __init__(self, status: int, code: str, message: str, request_id: str | None = None, *, sends: int = 1) -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.sends = sends  # how many times the request went out (tenant/retry.py bounds it)

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def duplicate(self) -> bool:
        return self.status == 400 and "already exists" in self.message

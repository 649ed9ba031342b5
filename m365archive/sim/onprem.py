"""Placeholder: routes are being written."""

from __future__ import annotations

from starlette.routing import BaseRoute

from m365archive.sim.state import TenantState


def routes(state: TenantState) -> list[BaseRoute]:
    return []

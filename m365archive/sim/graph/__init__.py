"""Simulated Microsoft Graph v1.0: the subset m365archive calls, answering as Graph does.

Every path served here exists in shared/specs/graph-v1.0-subset.openapi.json and every property
returned exists on its entity type in the v1.0 CSDL (tests/test_sim_graph_spec.py checks both).

Handlers are plain functions `(Ctx) -> Reply` kept in one table; the Starlette routes and the
`$batch` endpoint both dispatch through that table, so a batched request runs exactly the code a
direct one does. Errors are raised as `GraphFail` and rendered with `sim.http.graph_error`.

The package splits the service by area: `core` (plumbing), `users`, `licences`, `roles`, `groups`,
`apps`, `batch`; `service.GraphService` composes them.
"""

from m365archive.sim.graph.apps import (
    APP_ROLE_FIELDS,
    GRANT_FIELDS,
    KNOWN_APPS,
    MICROSOFT_TENANT,
    AppsMixin,
    add_app_role_assignment,
    remove_service_principal,
    sp_fields,
)
from m365archive.sim.graph.batch import MAX_BATCH, BatchMixin
from m365archive.sim.graph.core import (
    PREFIX,
    Ctx,
    GraphCore,
    GraphFail,
    Handler,
    Reply,
    bad_request,
    invalid_value,
    not_found,
    render,
)
from m365archive.sim.graph.groups import GROUP_FIELDS, GroupsMixin
from m365archive.sim.graph.licences import LicencesMixin
from m365archive.sim.graph.roles import ROLE_ASSIGNMENT_FIELDS, ROLE_DEF_FIELDS, RolesMixin
from m365archive.sim.graph.service import GraphService, routes
from m365archive.sim.graph.users import (
    SYNCED_ATTRIBUTES,
    USER_DEFAULT,
    USER_FIELDS,
    USER_FILTER_FIELDS,
    USER_FILTERABLE,
    USER_READ_ONLY,
    WEAK_PASSWORD,
    UsersMixin,
    password_ok,
)

__all__ = [
    "APP_ROLE_FIELDS",
    "GRANT_FIELDS",
    "GROUP_FIELDS",
    "KNOWN_APPS",
    "MAX_BATCH",
    "MICROSOFT_TENANT",
    "PREFIX",
    "ROLE_ASSIGNMENT_FIELDS",
    "ROLE_DEF_FIELDS",
    "SYNCED_ATTRIBUTES",
    "USER_DEFAULT",
    "USER_FIELDS",
    "USER_FILTERABLE",
    "USER_FILTER_FIELDS",
    "USER_READ_ONLY",
    "WEAK_PASSWORD",
    "AppsMixin",
    "BatchMixin",
    "Ctx",
    "GraphCore",
    "GraphFail",
    "GraphService",
    "GroupsMixin",
    "Handler",
    "LicencesMixin",
    "Reply",
    "RolesMixin",
    "UsersMixin",
    "add_app_role_assignment",
    "bad_request",
    "invalid_value",
    "not_found",
    "password_ok",
    "remove_service_principal",
    "render",
    "routes",
    "sp_fields",
]

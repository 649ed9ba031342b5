"""Simulated Exchange Online and Security & Compliance admin API (the EXO v3 module's REST calls).

    POST /adminapi/beta/{tenant}/InvokeCommand        one cmdlet
    POST /adminapi/beta/{tenant}/$batch               at most 10 InvokeCommand sub-requests
    POST /scc/adminapi/beta/{tenant}/...              the same for Security & Compliance

Request body: {"CmdletInput": {"CmdletName": "Set-Mailbox", "Parameters": {...}}}. Success:
{"@odata.context": ..., "value": [objects], "@adminapi.warnings": [...], "@odata.nextLink": ...};
a Get- cmdlet's output is paged (`Prefer: odata.maxpagesize=N`, default and maximum 1000) and
the client re-POSTs the same body to the nextLink. Errors:
{"error": {"code": "NotFound", "message": "|<exception>|<text>", "details": [{"code": "Context",
"target": "", "message": "Ex6F9304|<exception>|<text>"}], "innererror": {...}}}, the shape
Exchange answers with (seen in public issue threads, e.g. Microsoft365DSC#2998).

Every call is bound against exchange-cmdlets.json first (sim.cmdlets), so what the real
service refuses for a parameter is refused here. Error texts come from exchange-errors.json
where it has them; texts marked "unverified" below are our best guess at Microsoft's wording.

Load: a token bucket per tenant and service (`knobs.exchange_rate`, `knobs.exchange_burst`;
each cmdlet, each $batch sub-request, takes one token) and a cap on concurrent requests
(`knobs.exchange_concurrency`); both answer 429 with Retry-After.

The package splits the service by area: `core` (errors, results, paging), `filters`, `mailboxes`,
`permissions`, `org`, `role_groups`, `retention`; `service.ExchangeService` dispatches to them.
"""

from m365archive.sim.exchange.core import (
    COMPLIANCE_TASK,
    DEFAULT_RESULT_SIZE,
    MAX_PAGE,
    MEMBER_EXISTS,
    NOT_FOUND,
    PROVISIONING,
    RECIPIENT_TASK,
    RESULT_SIZE_WARNING,
    TASK_ARGUMENT,
    THROTTLING,
    CmdletError,
    Context,
    Result,
)
from m365archive.sim.exchange.filters import compile_filter
from m365archive.sim.exchange.mailboxes import (
    EXO_PROPERTY_SETS,
    ZERO_GUID,
    enable_mailbox,
    get_exo_mailbox,
    get_mailbox,
    set_mailbox,
)
from m365archive.sim.exchange.org import (
    get_admin_audit_log_config,
    get_mailbox_audit_bypass,
    get_organization_config,
    get_recipient,
    get_user,
    set_organization_config,
)
from m365archive.sim.exchange.permissions import (
    add_mailbox_permission,
    get_mailbox_permission,
    remove_mailbox_permission,
)
from m365archive.sim.exchange.retention import (
    MAX_POLICY_MAILBOXES,
    get_retention_policy,
    get_retention_rule,
    new_retention_policy,
    new_retention_rule,
    remove_retention_policy,
    set_retention_policy,
)
from m365archive.sim.exchange.role_groups import add_role_group_member, get_role_group, get_role_group_member
from m365archive.sim.exchange.service import MAX_BATCH, ExchangeService, routes, service_for

__all__ = [
    "COMPLIANCE_TASK",
    "DEFAULT_RESULT_SIZE",
    "EXO_PROPERTY_SETS",
    "MAX_BATCH",
    "MAX_PAGE",
    "MAX_POLICY_MAILBOXES",
    "MEMBER_EXISTS",
    "NOT_FOUND",
    "PROVISIONING",
    "RECIPIENT_TASK",
    "RESULT_SIZE_WARNING",
    "TASK_ARGUMENT",
    "THROTTLING",
    "ZERO_GUID",
    "CmdletError",
    "Context",
    "ExchangeService",
    "Result",
    "add_mailbox_permission",
    "add_role_group_member",
    "compile_filter",
    "enable_mailbox",
    "get_admin_audit_log_config",
    "get_exo_mailbox",
    "get_mailbox",
    "get_mailbox_audit_bypass",
    "get_mailbox_permission",
    "get_organization_config",
    "get_recipient",
    "get_retention_policy",
    "get_retention_rule",
    "get_role_group",
    "get_role_group_member",
    "get_user",
    "new_retention_policy",
    "new_retention_rule",
    "remove_mailbox_permission",
    "remove_retention_policy",
    "routes",
    "service_for",
    "set_mailbox",
    "set_organization_config",
    "set_retention_policy",
]

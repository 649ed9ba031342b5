"""What undoing a change does, in one place: the PowerShell line and what is lost.

Steps attach these to their Changes (`rollback`, `rollback_note`); the report's back-out section
lists them in reverse dependency order. Each note says what the service keeps or loses, with the
Microsoft page that says so, because the order of a back-out changes what is lost (a licence
removed or a user deleted before a hold is released).
"""

from __future__ import annotations

from typing import Any

from m365archive.powershell import command, lookup, odata_filter, user_id

HOLD_RELEASE = (
    "releases the hold; Exchange Online then puts a 30-day delay hold on the mailbox (DelayHoldApplied), so "
    "items are still kept for 30 days before retention policies alone decide (source: Microsoft Purview "
    "'Manage mailboxes on delay hold')"
)
POLICY_RELEASE = (
    "the mailbox leaves the retention policy; Exchange Online keeps its items under a 30-day delay hold first "
    "(source: Microsoft Purview 'Manage mailboxes on delay hold')"
)
ARCHIVE_DISABLE = (
    "disconnects the archive: it can be reconnected for 30 days, then its content is deleted (source: Microsoft "
    "Purview 'Disable archive mailboxes'); back out holds first only if that content may go"
)
AUTO_EXPANDING = (
    "can't be undone: auto-expanding archiving can't be turned off once enabled for a mailbox (source: "
    "Enable-Mailbox reference, -AutoExpandingArchive)"
)
USER_DELETE = (
    "deletes the account (restorable from deleted users for 30 days). Its mailbox is soft-deleted for 30 days, "
    "or, while a Litigation Hold or retention policy applies, becomes an inactive mailbox kept as long as the "
    "hold (source: Microsoft Purview 'Learn about inactive mailboxes'); release holds first only if the data "
    "may go"
)
LICENCE_REMOVE = (
    "frees the seat. Without an Exchange Online licence the mailbox is deleted after a 30-day grace period unless "
    "a hold keeps it; run it after the hold's rollback only if the data may go (source: Microsoft 365 'Remove "
    "licenses from users')"
)
EXCHANGE_ADMIN_REMOVE = "removes the Exchange Administrator role; the account keeps its mailbox and data"
ROLE_FILTER = "principalId eq '{0}' and roleDefinitionId eq '{1}'"


def role_assignment_removal(upn: str, object_id: str | None, role_definition_id: str) -> str:
    """Remove a directory role assignment found by principal and role (its id is known only after apply)."""
    assignment = lookup(
        "Get-MgRoleManagementDirectoryRoleAssignment",
        {"Filter": odata_filter(ROLE_FILTER, user_id(upn, object_id), role_definition_id)},
    )
    return command("Remove-MgRoleManagementDirectoryRoleAssignment", {"UnifiedRoleAssignmentId": assignment})


def service_principal_removal(app_id: str) -> str:
    sp = lookup("Get-MgServicePrincipal", {"Filter": odata_filter("appId eq '{0}'", app_id)})
    return command("Remove-MgServicePrincipal", {"ServicePrincipalId": sp})


def audit_restore(identity: str, kind: str, before: Any, default_before: bool) -> tuple[str, str]:
    """Back to the previous action set: Microsoft's default (which Microsoft keeps current) or the list."""
    if default_before or not before:
        return (
            command("Set-Mailbox", {"Identity": identity, "DefaultAuditSet": [kind]}),
            f"restores Microsoft's default {kind.lower()} action set (Set-Mailbox -DefaultAuditSet; Microsoft "
            "adds new actions to it)",
        )
    values = before if isinstance(before, list) else [before]
    return (
        command("Set-Mailbox", {"Identity": identity, f"Audit{kind}": [str(v) for v in values]}),
        f"restores the previous {kind.lower()} action set",
    )


__all__ = [
    "ARCHIVE_DISABLE",
    "AUTO_EXPANDING",
    "EXCHANGE_ADMIN_REMOVE",
    "HOLD_RELEASE",
    "LICENCE_REMOVE",
    "POLICY_RELEASE",
    "USER_DELETE",
    "audit_restore",
    "role_assignment_removal",
    "service_principal_removal",
]

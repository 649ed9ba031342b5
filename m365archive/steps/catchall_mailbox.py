"""Step 2b: the catch-all mailbox in Exchange Online: hidden from address lists, FullAccess for
reviewers, archive and auto-expanding archive, Litigation Hold (or a retention policy), auditing."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from m365archive.config import MICROSOFT_AUDIT_DEFAULTS
from m365archive.engine.checks import Check
from m365archive.engine.plan import NEW_MAILBOX, OperationKind, Severity, setting_text
from m365archive.powershell import command
from m365archive.steps import rollback, weighty
from m365archive.steps.base import EXO, SCC, StepContext, StepPlan, change, cmdlet_operation, finding
from m365archive.steps.retention import location_names, new_policy
from m365archive.steps.seams import CatchallUser, Planned, PolicyJoiners
from m365archive.tenant.exchange import NO_ARCHIVE_GUID, Cmdlet, has_archive

NAME = "catchall_mailbox"
NEW_MAILBOX_DEFAULTS: dict[str, Any] = {
    "HiddenFromAddressListsEnabled": False,
    "ArchiveGuid": NO_ARCHIVE_GUID,
    "AutoExpandingArchiveEnabled": False,
    "LitigationHoldEnabled": False,
    "LitigationHoldDuration": "Unlimited",
    # Mailbox auditing on by default does not flip AuditEnabled to True (exchange-facts `audit_enabled`);
    # a new mailbox is on Microsoft's default action sets (exchange-facts `audit_actions`).
    "AuditEnabled": False,
    "DefaultAuditSet": ["Admin", "Delegate", "Owner"],
    "AuditOwner": MICROSOFT_AUDIT_DEFAULTS["owner"],
    "AuditDelegate": MICROSOFT_AUDIT_DEFAULTS["delegate"],
    "AuditAdmin": MICROSOFT_AUDIT_DEFAULTS["admin"],
}
ALREADY_ARCHIVE = ["already has an archive", "already archive-enabled", "already enabled"]


def hold_duration(value: Any) -> str:
    """Exchange shows '2555.00:00:00' or 'Unlimited'; the config says 2555 or 'unlimited'."""
    text = str(value or "Unlimited")
    if text.lower() == "unlimited":
        return "Unlimited"
    return text.split(".")[0]


async def read_mailbox(ctx: StepContext, upn: str) -> dict[str, Any] | None:
    outcome = await ctx.session.exchange.invoke(Cmdlet("Get-Mailbox", {"Identity": upn}))
    if outcome.error is not None:
        if outcome.error.not_found:
            return None
        raise outcome.error
    return outcome.objects[0] if outcome.objects else None


async def plan(ctx: StepContext, user: CatchallUser) -> Planned[PolicyJoiners]:
    cfg = ctx.config.catchall
    assert cfg is not None
    out = StepPlan()
    upn = cfg.upn
    missing: set[str] = set()
    for principal in cfg.full_access:
        reviewer = await ctx.session.graph.get_user(principal.user, ["id", "userPrincipalName"])
        if reviewer is None:
            missing.add(principal.user)
            out.checks.append(
                Check(
                    "reviewers",
                    f"FullAccess reviewer {principal.user} does not exist in the tenant (catchall.full_access)",
                    True,
                    False,
                    "correct the reviewer's UPN in catchall.full_access, or create the user first",
                )
            )
    ctx.observe("catchall.missing_reviewers", sorted(missing))
    if cfg.full_access and not missing:
        out.checks.append(Check("reviewers", f"{len(cfg.full_access)} FullAccess reviewer(s) exist", True, True))
    deps = list(user.mailbox_after)
    joiners: dict[str, tuple[str, ...]] = {}
    mailbox = await read_mailbox(ctx, upn) if user.exists else None
    new = mailbox is None
    if new and user.exists and not deps:
        out.findings.append(
            finding(
                NAME,
                upn,
                Severity.WARNING,
                "the user exists and is licensed but Exchange Online shows no mailbox yet",
                "a new mailbox appears minutes after licensing; run setup again later",
            )
        )
        return Planned(out, PolicyJoiners())
    current = mailbox or NEW_MAILBOX_DEFAULTS
    ctx.observe("catchall.mailbox", {k: current.get(k) for k in NEW_MAILBOX_DEFAULTS} if mailbox else None)

    def cur(key: str) -> Any:
        return current.get(key) if mailbox else NEW_MAILBOX + setting_text(NEW_MAILBOX_DEFAULTS[key])

    def exo(key: str, setting: str, before: Any, after: Any, cmd: Cmdlet, **extra: Any) -> None:
        if new and NEW_MAILBOX_DEFAULTS.get(setting) == after:
            before = after  # a new mailbox comes with this setting already: nothing to send
        out.changes.append(
            change(
                NAME,
                key,
                upn,
                setting,
                before,
                after,
                cmdlet_operation(OperationKind.EXCHANGE, cmd, extra.pop("ok_if_error", None)),
                side=EXO,
                depends_on=list(deps) + extra.pop("after_ids", []),
                **extra,
            )
        )

    # Hidden from address lists.
    hidden_now = current.get("HiddenFromAddressListsEnabled")
    exo(
        "hidden",
        "HiddenFromAddressListsEnabled",
        cur("HiddenFromAddressListsEnabled") if new else hidden_now,
        cfg.hidden_from_address_lists,
        Cmdlet("Set-Mailbox", {"Identity": upn, "HiddenFromAddressListsEnabled": cfg.hidden_from_address_lists}),
        rollback=command("Set-Mailbox", {"Identity": upn, "HiddenFromAddressListsEnabled": bool(hidden_now)}),
        rollback_note="shows the mailbox in address lists again" if not hidden_now else "",
    )

    # FullAccess for each reviewer.
    granted: dict[str, dict[str, Any]] = {}
    if mailbox:
        perms = await ctx.session.exchange.invoke(Cmdlet("Get-MailboxPermission", {"Identity": upn}))
        for perm in perms.objects:
            rights = perm.get("AccessRights") or []
            rights = rights if isinstance(rights, list) else [rights]
            if "FullAccess" in rights and not perm.get("Deny") and not perm.get("IsInherited"):
                granted[str(perm.get("User", "")).lower()] = perm
    ctx.observe("catchall.fullaccess", sorted(granted))
    for principal in cfg.full_access:
        if principal.user in missing:
            continue
        has = principal.user.lower() in granted
        exo(
            f"fullaccess-{principal.user}",
            f"FullAccess for {principal.user}",
            "granted" if has else None,
            "granted",
            Cmdlet(
                "Add-MailboxPermission",
                {
                    "Identity": upn,
                    "User": principal.user,
                    "AccessRights": ["FullAccess"],
                    "AutoMapping": principal.automapping,
                },
            ),
            rollback=command(
                "Remove-MailboxPermission",
                {"Identity": upn, "User": principal.user, "AccessRights": ["FullAccess"], "InheritanceType": "All"},
            ),
            rollback_note=f"{principal.user} can no longer open the mailbox",
        )

    # Archive, then auto-expanding archive (one-way).
    archive_id = f"{NAME}/archive/{upn}"
    archive_on = bool(mailbox) and has_archive(current)  # ArchiveGuid, not ArchiveStatus (can read None)
    if cfg.archive:
        exo(
            "archive",
            "archive mailbox",
            NEW_MAILBOX + setting_text(False) if new else archive_on,
            True,
            Cmdlet("Enable-Mailbox", {"Identity": upn, "Archive": True}),
            ok_if_error=ALREADY_ARCHIVE,
            rollback=command("Disable-Mailbox", {"Identity": upn, "Archive": True}),
            rollback_note=rollback.ARCHIVE_DISABLE,
            warnings=[weighty.COMMUNICATION_COMPLIANCE],
        )
    if cfg.auto_expanding_archive:
        before = current.get("AutoExpandingArchiveEnabled") if mailbox else cur("AutoExpandingArchiveEnabled")
        exo(
            "auto-expanding-archive",
            "AutoExpandingArchiveEnabled",
            before,
            True,
            Cmdlet("Enable-Mailbox", {"Identity": upn, "AutoExpandingArchive": True}),
            ok_if_error=["already enabled"],
            after_ids=[archive_id] if cfg.archive and not archive_on else [],
            warnings=[weighty.AUTO_EXPANDING_ONE_WAY, weighty.AUTO_EXPANDING_LIMITS, weighty.ARCHIVE_FOR_ONE_USER],
            rollback_note=rollback.AUTO_EXPANDING,
        )

    # Hold: Litigation Hold on the mailbox, or the mailbox in a retention policy.
    hold = ctx.config.hold
    if hold.kind == "litigation":
        want = hold.exchange_duration
        on = bool(current.get("LitigationHoldEnabled"))
        duration = hold_duration(current.get("LitigationHoldDuration"))
        before_hold = ("on, " + duration) if mailbox and on else (cur("LitigationHoldEnabled") if new else "off")
        after_hold = f"on, {want}"
        exo(
            "litigation-hold",
            "Litigation Hold",
            before_hold,
            after_hold,
            Cmdlet(
                "Set-Mailbox",
                {"Identity": upn, "LitigationHoldEnabled": True, "LitigationHoldDuration": want},
            ),
            warnings=["Litigation Hold preserves every item, including deleted ones, for the hold's duration."],
            rollback=command("Set-Mailbox", {"Identity": upn, "LitigationHoldDuration": duration})
            if mailbox and on
            else command("Set-Mailbox", {"Identity": upn, "LitigationHoldEnabled": False}),
            rollback_note=f"restores the previous hold duration ({duration})"
            if mailbox and on
            else rollback.HOLD_RELEASE,
        )
    elif hold.kind == "retention-policy":
        if ctx.config.users.scope != "none" and ctx.config.users.hold:
            # One set of policies covers everyone: the user-mailbox step puts the catch-all in it,
            # once its mailbox exists (`deps`).
            joiners[upn] = tuple(deps)
        else:
            out.extend(await plan_retention_policy(ctx, [upn], deps))

    # Mailbox auditing. A new mailbox is planned exactly as an existing one showing a new mailbox's values.
    audit = ctx.config.audit
    if audit.enabled:
        exo(
            "audit-enabled",
            "AuditEnabled",
            cur("AuditEnabled") if new else current.get("AuditEnabled"),
            True,
            Cmdlet("Set-Mailbox", {"Identity": upn, "AuditEnabled": True}),
            rollback=command("Set-Mailbox", {"Identity": upn, "AuditEnabled": False}),
            rollback_note="mailbox audit logging for this mailbox is off again (unless auditing is on by default)",
        )
        default_set = {str(k) for k in current.get("DefaultAuditSet") or []}
        explicit = {k for k, wanted in (("Owner", audit.owner), ("Delegate", audit.delegate), ("Admin", audit.admin))
                    if wanted is not None}  # fmt: skip
        managed = {"Owner", "Delegate", "Admin"} - explicit  # Microsoft's defaults: the logon type in DefaultAuditSet
        if managed:
            set_now = sorted(default_set & {"Owner", "Delegate", "Admin"})
            set_wanted = sorted((default_set | managed) & {"Owner", "Delegate", "Admin"} - explicit)
            exo(
                "audit-default-set",
                "DefaultAuditSet",
                set_now,
                set_now if managed <= default_set else set_wanted,
                Cmdlet("Set-Mailbox", {"Identity": upn, "DefaultAuditSet": set_wanted}),
                rollback_note="the previous action lists are not kept by Exchange once a type is back on "
                "Microsoft's defaults; set them again with Set-Mailbox -AuditOwner/-AuditDelegate/-AuditAdmin",
            )
        for kind, wanted in (("Owner", audit.owner), ("Delegate", audit.delegate), ("Admin", audit.admin)):
            if wanted is None:
                continue
            have_list = current.get(f"Audit{kind}")
            have_set = sorted(have_list) if isinstance(have_list, list) else have_list
            undo, undo_note = rollback.audit_restore(upn, kind, have_set, kind in default_set)
            exo(
                f"audit-{kind.lower()}",
                f"Audit{kind}",
                have_set,
                sorted(wanted),
                Cmdlet("Set-Mailbox", {"Identity": upn, f"Audit{kind}": sorted(wanted)}),
                rollback=undo,
                rollback_note=undo_note,
                warnings=[
                    f"An explicit Audit{kind} list takes {kind} off Microsoft-managed defaults (DefaultAuditSet): "
                    "actions Microsoft adds later are not audited for it."
                ],
            )
    org = await ctx.session.exchange.invoke(Cmdlet("Get-OrganizationConfig", {}))
    audit_disabled = bool(org.objects and org.objects[0].get("AuditDisabled"))
    ctx.observe("org.AuditDisabled", audit_disabled)
    if audit_disabled:
        out.findings.append(
            finding(
                NAME,
                "organization",
                Severity.WARNING,
                "mailbox auditing is turned off for the whole organization (Get-OrganizationConfig AuditDisabled = "
                "True): per-mailbox audit settings have no effect",
                "Set-OrganizationConfig -AuditDisabled $false",
            )
        )
    return Planned(out, PolicyJoiners(MappingProxyType(joiners)))


async def plan_retention_policy(ctx: StepContext, mailboxes: list[str], deps: list[str]) -> StepPlan:
    """Put mailboxes in the configured retention policy (created if missing) on the compliance side."""
    out = StepPlan()
    name = ctx.config.hold.retention_policy or ""
    outcome = await ctx.session.compliance.invoke(
        Cmdlet("Get-RetentionCompliancePolicy", {"Identity": name, "DistributionDetail": True})
    )
    policy = outcome.objects[0] if outcome.ok and outcome.objects else None
    if outcome.error is not None and not outcome.error.not_found:
        raise outcome.error
    locations = location_names(policy)
    ctx.observe(f"policy.{name}", sorted(locations) if policy else None)
    missing = [m for m in mailboxes if m.lower() not in locations and "all" not in locations]
    if policy is None:
        out.changes += new_policy(NAME, name, mailboxes, ctx.config.hold.exchange_duration,
                                  after={"ExchangeLocation": mailboxes}, deps=deps)  # fmt: skip
    elif missing and str(policy.get("DistributionStatus") or "Success") == "Pending":
        # Changes to a policy whose distribution is pending are refused (Set-RetentionCompliancePolicy).
        out.findings.append(
            finding(
                NAME,
                name,
                Severity.WARNING,
                f"retention policy '{name}' is still distributing an earlier change (DistributionStatus Pending): "
                f"{', '.join(missing)} wait(s) for the next run",
                "run setup again once Get-RetentionCompliancePolicy -DistributionDetail shows Success",
                category="policy-distribution-pending",
            )
        )
    else:
        for mbx in mailboxes:
            has = mbx not in missing
            out.changes.append(
                change(
                    NAME,
                    "retention-location",
                    mbx,
                    f"in retention policy '{name}'",
                    "yes" if has else None,
                    "yes",
                    cmdlet_operation(
                        OperationKind.COMPLIANCE,
                        Cmdlet("Set-RetentionCompliancePolicy", {"Identity": name, "AddExchangeLocation": [mbx]}),
                    ),
                    side=SCC,
                    depends_on=list(deps),
                    rollback=command(
                        "Set-RetentionCompliancePolicy", {"Identity": name, "RemoveExchangeLocation": [mbx]}
                    ),
                    rollback_note=rollback.POLICY_RELEASE,
                )
            )
    return out

"""Step 2b: the catch-all mailbox in Exchange Online: hidden from address lists, FullAccess for
reviewers, archive and auto-expanding archive, Litigation Hold (or a retention policy), auditing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from m365archive.config import MICROSOFT_AUDIT_DEFAULTS, CatchallConfig, Config
from m365archive.engine.checks import Check
from m365archive.engine.plan import NEW_MAILBOX, OperationKind, Severity, setting_text
from m365archive.powershell import command
from m365archive.steps import rollback, weighty
from m365archive.steps.base import EXO, SCC, StepContext, StepPlan, change, cmdlet_operation, finding
from m365archive.steps.retention import hold_duration, location_names, new_policy
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


async def read_mailbox(ctx: StepContext, upn: str) -> dict[str, Any] | None:
    outcome = await ctx.session.exchange.invoke(Cmdlet("Get-Mailbox", {"Identity": upn}))
    if outcome.error is not None:
        if outcome.error.not_found:
            return None
        raise outcome.error
    return outcome.objects[0] if outcome.objects else None


@dataclass(frozen=True)
class PolicyState:
    """A retention policy as read: its locations (lower case) and whether a change is still distributing."""

    name: str
    exists: bool = False
    locations: frozenset[str] = frozenset()
    pending: bool = False


@dataclass(frozen=True)
class MailboxState:
    """What the step reads. `mailbox` None is a mailbox still to come (planned with a new mailbox's values);
    `not_provisioned`: the user exists and is licensed, yet Exchange Online shows no mailbox (nothing else
    was read)."""

    missing_reviewers: frozenset[str] = frozenset()
    mailbox: Mapping[str, Any] | None = None
    not_provisioned: bool = False
    full_access: frozenset[str] = frozenset()  # users (lower case) with explicit FullAccess
    policy: PolicyState | None = None  # the retention policy, when the catch-all joins it on its own
    audit_disabled: bool = False  # Get-OrganizationConfig AuditDisabled


async def read(ctx: StepContext, user: CatchallUser) -> MailboxState:
    cfg = ctx.config.catchall
    assert cfg is not None
    missing = frozenset(
        [
            p.user
            for p in cfg.full_access
            if await ctx.session.graph.get_user(p.user, ["id", "userPrincipalName"]) is None
        ]
    )
    ctx.observe("catchall.missing_reviewers", sorted(missing))
    mailbox = await read_mailbox(ctx, cfg.upn) if user.exists else None
    if mailbox is None and user.exists and not user.mailbox_after:
        return MailboxState(missing, not_provisioned=True)
    ctx.observe("catchall.mailbox", {k: mailbox.get(k) for k in NEW_MAILBOX_DEFAULTS} if mailbox else None)
    granted = await _full_access(ctx, cfg.upn) if mailbox else frozenset()
    ctx.observe("catchall.fullaccess", sorted(granted))
    policy = None
    if ctx.config.hold.kind == "retention-policy" and not _users_hold_it(ctx.config):
        policy = await read_policy(ctx, ctx.config.hold.retention_policy or "")
    org = await ctx.session.exchange.invoke(Cmdlet("Get-OrganizationConfig", {}))
    audit_disabled = bool(org.objects and org.objects[0].get("AuditDisabled"))
    ctx.observe("org.AuditDisabled", audit_disabled)
    return MailboxState(missing, mailbox, False, granted, policy, audit_disabled)


async def _full_access(ctx: StepContext, upn: str) -> frozenset[str]:
    perms = await ctx.session.exchange.invoke(Cmdlet("Get-MailboxPermission", {"Identity": upn}))
    granted: set[str] = set()
    for perm in perms.objects:
        rights = perm.get("AccessRights") or []
        rights = rights if isinstance(rights, list) else [rights]
        if "FullAccess" in rights and not perm.get("Deny") and not perm.get("IsInherited"):
            granted.add(str(perm.get("User", "")).lower())
    return frozenset(granted)


async def read_policy(ctx: StepContext, name: str) -> PolicyState:
    outcome = await ctx.session.compliance.invoke(
        Cmdlet("Get-RetentionCompliancePolicy", {"Identity": name, "DistributionDetail": True})
    )
    policy = outcome.objects[0] if outcome.ok and outcome.objects else None
    if outcome.error is not None and not outcome.error.not_found:
        raise outcome.error
    locations = location_names(policy)
    ctx.observe(f"policy.{name}", sorted(locations) if policy else None)
    if policy is None:
        return PolicyState(name)
    pending = str(policy.get("DistributionStatus") or "Success") == "Pending"
    return PolicyState(name, True, frozenset(locations), pending)


def _users_hold_it(config: Config) -> bool:
    """One set of policies covers everyone: the user-mailbox step puts the catch-all in it."""
    return config.users.scope != "none" and config.users.hold


async def plan(ctx: StepContext, user: CatchallUser) -> Planned[PolicyJoiners]:
    return plan_mailbox(ctx.config, await read(ctx, user), user)


def plan_mailbox(config: Config, state: MailboxState, user: CatchallUser) -> Planned[PolicyJoiners]:
    """The catch-all mailbox planned from what was read: reviewer checks, then a short loop over SETTINGS."""
    assert config.catchall is not None
    upn = config.catchall.upn
    out = StepPlan(checks=_reviewer_checks(config.catchall, state.missing_reviewers))
    if state.not_provisioned:
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
    m = Mailbox(config, state, list(user.mailbox_after), out)
    for setting in SETTINGS:
        setting(m)
    if state.audit_disabled:
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
    return Planned(out, PolicyJoiners(MappingProxyType(m.joiners)))


def _reviewer_checks(cfg: CatchallConfig, missing: frozenset[str]) -> list[Check]:
    checks = [
        Check(
            "reviewers",
            f"FullAccess reviewer {p.user} does not exist in the tenant (catchall.full_access)",
            True,
            False,
            "correct the reviewer's UPN in catchall.full_access, or create the user first",
        )
        for p in cfg.full_access
        if p.user in missing
    ]
    if cfg.full_access and not missing:
        checks.append(Check("reviewers", f"{len(cfg.full_access)} FullAccess reviewer(s) exist", True, True))
    return checks


@dataclass
class Mailbox:
    """The catch-all mailbox as read (or a new mailbox's values), and the plan being made for it."""

    config: Config
    state: MailboxState
    deps: list[str]  # what every change waits for: the licence that provisions a new mailbox
    out: StepPlan
    joiners: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def cfg(self) -> CatchallConfig:
        assert self.config.catchall is not None
        return self.config.catchall

    @property
    def upn(self) -> str:
        return self.cfg.upn

    @property
    def new(self) -> bool:
        return self.state.mailbox is None

    def get(self, key: str) -> Any:
        """The mailbox's value, or a new mailbox's."""
        return (self.state.mailbox or NEW_MAILBOX_DEFAULTS).get(key)

    def before(self, key: str) -> Any:
        """What a report shows as the value now: a new mailbox's value says so."""
        return self.get(key) if not self.new else NEW_MAILBOX + setting_text(NEW_MAILBOX_DEFAULTS[key])

    def exo(self, key: str, setting: str, before: Any, after: Any, cmd: Cmdlet, **extra: Any) -> None:
        if self.new and NEW_MAILBOX_DEFAULTS.get(setting) == after:
            before = after  # a new mailbox comes with this setting already: nothing to send
        self.out.changes.append(
            change(
                step=NAME,
                key=key,
                target=self.upn,
                setting=setting,
                before=before,
                after=after,
                operation=cmdlet_operation(OperationKind.EXCHANGE, cmd, extra.pop("ok_if_error", None)),
                side=EXO,
                depends_on=list(self.deps) + extra.pop("after_ids", []),
                **extra,
            )
        )


def _hidden(m: Mailbox) -> None:
    hidden_now = m.get("HiddenFromAddressListsEnabled")
    want = m.cfg.hidden_from_address_lists
    m.exo(
        "hidden",
        "HiddenFromAddressListsEnabled",
        m.before("HiddenFromAddressListsEnabled"),
        want,
        Cmdlet("Set-Mailbox", {"Identity": m.upn, "HiddenFromAddressListsEnabled": want}),
        rollback=command("Set-Mailbox", {"Identity": m.upn, "HiddenFromAddressListsEnabled": bool(hidden_now)}),
        rollback_note="shows the mailbox in address lists again" if not hidden_now else "",
    )


def _full_access_grants(m: Mailbox) -> None:
    for principal in m.cfg.full_access:
        if principal.user in m.state.missing_reviewers:
            continue
        rights = {"Identity": m.upn, "User": principal.user, "AccessRights": ["FullAccess"]}
        m.exo(
            f"fullaccess-{principal.user}",
            f"FullAccess for {principal.user}",
            "granted" if principal.user.lower() in m.state.full_access else None,
            "granted",
            Cmdlet("Add-MailboxPermission", {**rights, "AutoMapping": principal.automapping}),
            rollback=command("Remove-MailboxPermission", {**rights, "InheritanceType": "All"}),
            rollback_note=f"{principal.user} can no longer open the mailbox",
        )


def _archive_on(m: Mailbox) -> bool:
    return bool(m.state.mailbox) and has_archive(dict(m.state.mailbox or {}))  # not ArchiveStatus (can read None)


def _archive(m: Mailbox) -> None:
    if not m.cfg.archive:
        return
    m.exo(
        "archive",
        "archive mailbox",
        NEW_MAILBOX + setting_text(False) if m.new else _archive_on(m),
        True,
        Cmdlet("Enable-Mailbox", {"Identity": m.upn, "Archive": True}),
        ok_if_error=ALREADY_ARCHIVE,
        rollback=command("Disable-Mailbox", {"Identity": m.upn, "Archive": True}),
        rollback_note=rollback.ARCHIVE_DISABLE,
        warnings=[weighty.COMMUNICATION_COMPLIANCE],
    )


def _auto_expanding(m: Mailbox) -> None:
    """One-way, and after the archive."""
    if not m.cfg.auto_expanding_archive:
        return
    m.exo(
        "auto-expanding-archive",
        "AutoExpandingArchiveEnabled",
        m.before("AutoExpandingArchiveEnabled"),
        True,
        Cmdlet("Enable-Mailbox", {"Identity": m.upn, "AutoExpandingArchive": True}),
        ok_if_error=["already enabled"],
        after_ids=[f"{NAME}/archive/{m.upn}"] if m.cfg.archive and not _archive_on(m) else [],
        warnings=[weighty.AUTO_EXPANDING_ONE_WAY, weighty.AUTO_EXPANDING_LIMITS, weighty.ARCHIVE_FOR_ONE_USER],
        rollback_note=rollback.AUTO_EXPANDING,
    )


def _hold(m: Mailbox) -> None:
    """Litigation Hold on the mailbox, or the mailbox in a retention policy."""
    hold = m.config.hold
    if hold.kind == "retention-policy":
        if _users_hold_it(m.config):
            m.joiners[m.upn] = tuple(m.deps)  # once its mailbox exists
        else:
            assert m.state.policy is not None
            m.out.extend(policy_plan(m.state.policy, [m.upn], hold.exchange_duration, m.deps))
        return
    if hold.kind != "litigation":
        return
    want = hold.exchange_duration
    on = not m.new and bool(m.get("LitigationHoldEnabled"))
    duration = hold_duration(m.get("LitigationHoldDuration"))
    m.exo(
        "litigation-hold",
        "Litigation Hold",
        ("on, " + duration) if on else (m.before("LitigationHoldEnabled") if m.new else "off"),
        f"on, {want}",
        Cmdlet("Set-Mailbox", {"Identity": m.upn, "LitigationHoldEnabled": True, "LitigationHoldDuration": want}),
        warnings=["Litigation Hold preserves every item, including deleted ones, for the hold's duration."],
        rollback=command("Set-Mailbox", {"Identity": m.upn, "LitigationHoldDuration": duration})
        if on
        else command("Set-Mailbox", {"Identity": m.upn, "LitigationHoldEnabled": False}),
        rollback_note=f"restores the previous hold duration ({duration})" if on else rollback.HOLD_RELEASE,
    )


def _audit_enabled(m: Mailbox) -> None:
    """A new mailbox is planned exactly as an existing one showing a new mailbox's values."""
    if not m.config.audit.enabled:
        return
    m.exo(
        "audit-enabled",
        "AuditEnabled",
        m.before("AuditEnabled"),
        True,
        Cmdlet("Set-Mailbox", {"Identity": m.upn, "AuditEnabled": True}),
        rollback=command("Set-Mailbox", {"Identity": m.upn, "AuditEnabled": False}),
        rollback_note="mailbox audit logging for this mailbox is off again (unless auditing is on by default)",
    )


def _audit_lists(m: Mailbox) -> dict[str, list[str] | None]:
    audit = m.config.audit
    return {"Owner": audit.owner, "Delegate": audit.delegate, "Admin": audit.admin}


def _audit_default_set(m: Mailbox) -> None:
    """Logon types without an explicit list stay on Microsoft's defaults (in DefaultAuditSet)."""
    if not m.config.audit.enabled:
        return
    default_set = {str(k) for k in m.get("DefaultAuditSet") or []}
    explicit = {kind for kind, wanted in _audit_lists(m).items() if wanted is not None}
    managed = {"Owner", "Delegate", "Admin"} - explicit
    if not managed:
        return
    set_now = sorted(default_set & {"Owner", "Delegate", "Admin"})
    set_wanted = sorted((default_set | managed) & {"Owner", "Delegate", "Admin"} - explicit)
    m.exo(
        "audit-default-set",
        "DefaultAuditSet",
        set_now,
        set_now if managed <= default_set else set_wanted,
        Cmdlet("Set-Mailbox", {"Identity": m.upn, "DefaultAuditSet": set_wanted}),
        rollback_note="the previous action lists are not kept by Exchange once a type is back on "
        "Microsoft's defaults; set them again with Set-Mailbox -AuditOwner/-AuditDelegate/-AuditAdmin",
    )


def _audit_actions(m: Mailbox) -> None:
    """An explicit action list per logon type, where the config names one."""
    if not m.config.audit.enabled:
        return
    default_set = {str(k) for k in m.get("DefaultAuditSet") or []}
    for kind, wanted in _audit_lists(m).items():
        if wanted is None:
            continue
        have_list = m.get(f"Audit{kind}")
        have_set = sorted(have_list) if isinstance(have_list, list) else have_list
        undo, undo_note = rollback.audit_restore(m.upn, kind, have_set, kind in default_set)
        m.exo(
            f"audit-{kind.lower()}",
            f"Audit{kind}",
            have_set,
            sorted(wanted),
            Cmdlet("Set-Mailbox", {"Identity": m.upn, f"Audit{kind}": sorted(wanted)}),
            rollback=undo,
            rollback_note=undo_note,
            warnings=[
                f"An explicit Audit{kind} list takes {kind} off Microsoft-managed defaults (DefaultAuditSet): "
                "actions Microsoft adds later are not audited for it."
            ],
        )


SETTINGS: tuple[Callable[[Mailbox], None], ...] = (
    _hidden,
    _full_access_grants,
    _archive,
    _auto_expanding,
    _hold,
    _audit_enabled,
    _audit_default_set,
    _audit_actions,
)


async def plan_retention_policy(ctx: StepContext, mailboxes: list[str], deps: list[str]) -> StepPlan:
    """Read the configured retention policy, then put `mailboxes` in it (a partial plan whose user-mailbox
    step is not chosen plans the catch-all's membership this way)."""
    policy = await read_policy(ctx, ctx.config.hold.retention_policy or "")
    return policy_plan(policy, mailboxes, ctx.config.hold.exchange_duration, deps)


def policy_plan(policy: PolicyState, mailboxes: list[str], duration: str, deps: list[str]) -> StepPlan:
    """Put mailboxes in the configured retention policy (created if missing) on the compliance side."""
    out = StepPlan()
    name = policy.name
    missing = [m for m in mailboxes if m.lower() not in policy.locations and "all" not in policy.locations]
    if not policy.exists:
        out.changes += new_policy(NAME, name, mailboxes, duration, after={"ExchangeLocation": mailboxes}, deps=deps)
    elif missing and policy.pending:
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
            out.changes.append(
                change(
                    step=NAME,
                    key="retention-location",
                    target=mbx,
                    setting=f"in retention policy '{name}'",
                    before=None if mbx in missing else "yes",
                    after="yes",
                    operation=cmdlet_operation(
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

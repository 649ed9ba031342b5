"""Step 3: every user mailbox in scope gets an archive (and auto-expanding archive when asked)
and a hold (Litigation Hold, or membership of a retention policy).

Reads are bulk: Graph users a page of 999 at a time and Exchange `Get-Mailbox -ResultSize
Unlimited` a page of 1,000 at a time, joined on the Entra object id. Mailboxes that can't be
configured are findings with a reason, never skipped in silence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from m365archive.config import UsersConfig
from m365archive.engine.checks import Check
from m365archive.engine.plan import Change, OperationKind, Severity, setting_text
from m365archive.licences import plans_granting
from m365archive.powershell import command
from m365archive.scope_file import ScopeFile, ScopeFileError, read_scope_file
from m365archive.steps import rollback, weighty
from m365archive.steps.base import EXO, ONPREM, SCC, StepContext, StepError, StepPlan, change, cmdlet_operation, finding
from m365archive.steps.retention import hold_duration, location_names, new_policy
from m365archive.steps.seams import MailboxSelection, PolicyJoiners
from m365archive.tenant.exchange import Cmdlet, has_archive
from m365archive.tenant.graph_types import GraphError

NAME = "user_mailboxes"
EXCHANGE_ARCHIVE_PLANS = plans_granting("archive")  # commercial and Government (data/service-plans.json)
HOLD_PLANS = plans_granting("hold")  # Plan 2 (incl. EXCHANGE_S_ENTERPRISE_GOV) or Exchange Online Archiving
POLICY_LIMIT = 1000  # Exchange mailboxes per retention policy (Microsoft's documented limit)
SCOPE_KEY = "users.scope"  # observed: how many licensed users are in scope
MAILBOX_FIELDS = (
    "ExternalDirectoryObjectId",
    "UserPrincipalName",
    "RecipientTypeDetails",
    "ArchiveGuid",
    "ArchiveDatabase",
    "AutoExpandingArchiveEnabled",
    "LitigationHoldEnabled",
    "LitigationHoldDuration",
    "IsDirSynced",
)


@dataclass(slots=True)
class UserRow:
    id: str
    upn: str
    plans: frozenset[str]
    synced: bool


async def _scope_users(
    ctx: StepContext,
    plan_of_sku: dict[str, frozenset[str]],
    out: StepPlan | None = None,
    selection: MailboxSelection | None = None,
) -> dict[str, UserRow]:
    """Licensed users in scope, by object id (bulk: one Graph page per 999 users). Checks and
    findings about the scope go to `out`; without one, a scope that can't be read is a StepError."""
    cfg = ctx.config.users
    if out is None:
        out = StepPlan()
        strict = True
    else:
        strict = False
    wanted: set[str] | None = None
    scope_file: ScopeFile | None = None
    if cfg.scope == "groups":
        wanted = await _group_members(ctx, cfg.groups, out)
    elif cfg.scope == "file":
        assert cfg.file is not None
        try:
            scope_file = read_scope_file(cfg.file)
        except ScopeFileError as exc:
            if strict:
                raise StepError(str(exc)) from None
            out.checks.append(
                Check("scope-file", str(exc), True, False, "point users.file at a readable UTF-8 file of UPNs")
            )
            return {}
        out.checks.append(
            Check("scope-file", f"{cfg.file} is readable: {len(scope_file.wanted):,} user(s) listed", True, True)
        )
        wanted = set(scope_file.wanted)
        ctx.observe("users.file", sorted(wanted))
    matched: set[str] = set()
    exclude = {u.lower() for u in cfg.exclude}
    if ctx.config.catchall is not None:
        exclude.add(ctx.config.catchall.upn.lower())
    users: dict[str, UserRow] = {}
    pages = 0
    async for page in ctx.session.graph.iter_users(
        select=["id", "userPrincipalName", "assignedLicenses", "onPremisesSyncEnabled"],
        filter="assignedLicenses/$count ne 0",
        page_size=999,
        eventual=True,
    ):
        pages += 1
        ctx.progress(f"read {pages * 999:,} users")
        for u in page:
            upn = str(u.get("userPrincipalName", ""))
            uid = str(u.get("id", ""))
            if wanted is not None:
                keys = {uid.lower(), upn.lower()} & wanted
                if not keys:
                    continue
                matched |= keys
            if upn.lower() in exclude:
                continue
            if selection is not None and not selection.wanted(upn):
                continue  # outside a staged rollout's selection: planned by a later run
            plans: frozenset[str] = frozenset().union(
                *(plan_of_sku.get(str(lic.get("skuId")), frozenset()) for lic in u.get("assignedLicenses") or [])
            )
            users[uid] = UserRow(uid, upn, plans, bool(u.get("onPremisesSyncEnabled")))
    if scope_file is not None:
        _scope_file_findings(out, scope_file, matched)
    return users


async def _plans_of_skus(ctx: StepContext) -> dict[str, frozenset[str]]:
    skus = await ctx.session.graph.subscribed_skus()
    return {
        str(s["skuId"]): frozenset(str(p.get("servicePlanId")).lower() for p in s.get("servicePlans") or [])
        for s in skus
    }


async def users_in_scope(ctx: StepContext) -> dict[str, UserRow]:
    """The licensed users `[users]` puts in scope, by object id (bulk reads; a scope that can't be read raises
    StepError). For `verify`, which reads the same mailboxes setup prepares."""
    return await _scope_users(ctx, await _plans_of_skus(ctx))


async def _group_members(ctx: StepContext, groups: list[str], out: StepPlan) -> set[str]:
    """The object ids of the groups' transitive members; a group that does not exist is a failed check."""
    wanted: set[str] = set()
    for group in groups:
        members = 0
        try:
            async for page in ctx.session.graph.transitive_member_users(group, ["id"]):
                members += len(page)
                wanted.update(str(u["id"]) for u in page)
        except GraphError as exc:
            if not exc.not_found:
                raise
            out.checks.append(
                Check(
                    "groups",
                    f"group {group} does not exist in the tenant (users.groups)",
                    True,
                    False,
                    "correct the group object id in users.groups",
                )
            )
            continue
        out.checks.append(Check("groups", f"group {group} resolves: {members:,} member(s)", True, True))
    return wanted


def _scope_file_findings(out: StepPlan, scope_file: ScopeFile, matched: set[str]) -> None:
    """Every line of the scope file is in scope or a finding here, with its line number."""
    where = scope_file.path
    if scope_file.empty:
        out.findings.append(
            finding(
                NAME,
                where,
                Severity.WARNING,
                "the scope file lists no users: no user mailbox is in scope",
                "add one UPN a line, or set users.scope",
                category="scope-file",
            )
        )
    for line, text, why in scope_file.problems:
        out.findings.append(
            finding(
                NAME,
                f"{where}:{line}",
                Severity.WARNING,
                f"line {line} ({text!r}) is not used: {why}",
                "correct the line; comments start with #",
                category="scope-file",
            )
        )
    for key, line in scope_file.wanted.items():
        if key not in matched:
            out.findings.append(
                finding(
                    NAME,
                    f"{where}:{line}",
                    Severity.WARNING,
                    f"line {line} ({key}) matches no licensed user in the tenant",
                    "check the spelling; a user without a licence has no mailbox",
                    category="scope-file",
                )
            )


async def plan(ctx: StepContext, joiners: PolicyJoiners, selection: MailboxSelection) -> StepPlan:
    cfg = ctx.config.users
    out = StepPlan()
    if cfg.scope == "none":
        return out
    plan_of_sku = await _plans_of_skus(ctx)
    users = await _scope_users(ctx, plan_of_sku, out, selection)
    if any(c.id == "scope-file" and not c.passed for c in out.checks):
        return out
    hold_kind = ctx.config.hold.kind if cfg.hold else "none"
    plan = Mailboxes(cfg, hold_kind, ctx.config.hold.exchange_duration, ctx.session.has_onprem, out)
    plan.policy_members += joiners.mailboxes
    digest = hashlib.sha256()
    seen: set[str] = set()
    pages = 0
    async for page in ctx.session.exchange.pages(Cmdlet("Get-Mailbox", {"ResultSize": "Unlimited"}), 1000):
        pages += 1
        ctx.progress(f"read {pages * 1000:,} mailboxes")
        for mbx in page:
            uid = str(mbx.get("ExternalDirectoryObjectId") or "")
            user = users.get(uid)
            if user is None:
                continue
            seen.add(uid)
            digest.update(repr(tuple(mbx.get(k) for k in MAILBOX_FIELDS)).encode())
            plan.add(user, mbx)
    _without_mailbox(out, [user for uid, user in users.items() if uid not in seen])
    ctx.observe(SCOPE_KEY, len(users))
    ctx.observe("users.mailboxes", digest.hexdigest())
    if plan.onprem_archive:
        out.extend(onprem_plan(plan.onprem_archive, await _read_remote_mailboxes(ctx, plan.onprem_archive)))
    if hold_kind == "retention-policy":
        base = ctx.config.hold.retention_policy or "m365archive third-party data"
        policies = await _read_policies(ctx, base, len(plan.policy_members))
        out.extend(policies_plan(policies, plan.policy_members, joiners.mailboxes, ctx.config.hold.exchange_duration))
    _summarize(out, len(users))
    return out


def _without_mailbox(out: StepPlan, users: list[UserRow]) -> None:
    """Users in scope that Exchange Online shows no mailbox for: not yet provisioned, or never will be."""
    for user in users:
        if user.plans & EXCHANGE_ARCHIVE_PLANS:
            out.findings.append(
                finding(
                    NAME,
                    user.upn,
                    Severity.WARNING,
                    "mailbox not provisioned yet",
                    "Exchange Online creates it minutes after licensing; run setup again later",
                    category="not-provisioned",
                )
            )
        else:
            out.findings.append(
                finding(
                    NAME,
                    user.upn,
                    Severity.INFO,
                    "no Exchange Online licence, so no mailbox",
                    "assign a licence with Exchange Online Plan 2",
                    category="no-mailbox-licence",
                )
            )


@dataclass(slots=True)
class Row:
    """One user's mailbox as read, and what its archive part decided (the later parts follow it)."""

    user: UserRow
    mbx: dict[str, Any]
    archive_planned: bool = False  # Enable-Mailbox -Archive is in the plan
    archive_on_premises: bool = False  # planned on-premises, once that side is read

    @property
    def upn(self) -> str:
        return self.user.upn

    @property
    def synced(self) -> bool:
        return self.user.synced or bool(self.mbx.get("IsDirSynced"))

    @property
    def archive_active(self) -> bool:
        return has_archive(self.mbx)  # not ArchiveStatus, which can read None for an active archive


@dataclass
class Mailboxes:
    """The user-mailbox plan as it is made, one mailbox at a time (pages stream through `add`; only the
    plan and the names the later reads need are kept)."""

    cfg: UsersConfig
    hold_kind: str  # "litigation", "retention-policy" or "none"
    want_duration: str
    onprem: bool  # on-premises Exchange is configured: synced users' archives are enabled there
    out: StepPlan = field(default_factory=StepPlan)
    policy_members: list[str] = field(default_factory=list)
    onprem_archive: list[str] = field(default_factory=list)

    def add(self, user: UserRow, mbx: dict[str, Any]) -> None:
        row = Row(user, mbx)
        kind = str(mbx.get("RecipientTypeDetails", ""))
        if kind != "UserMailbox":
            self.out.findings.append(
                finding(
                    NAME,
                    user.upn,
                    Severity.INFO,
                    f"recipient type {kind} is out of scope",
                    "only user mailboxes receive imported items",
                    category="out-of-scope",
                )
            )
            return
        for part in MAILBOX_PARTS:
            part(self, row)


def _archive(m: Mailboxes, row: Row) -> None:
    upn = row.upn
    if not m.cfg.archive:
        return
    if row.archive_active:
        m.out.changes.append(
            change(step=NAME, key="archive", target=upn, setting="archive", before=True, after=True,
                   operation=None, side=EXO, category="archive")
        )  # fmt: skip
    elif row.synced and m.onprem:
        m.onprem_archive.append(upn)
        row.archive_on_premises = True
    elif row.synced:
        m.out.findings.append(
            finding(
                NAME,
                upn,
                Severity.WARNING,
                "directory-synced user: Exchange Online refuses Enable-Mailbox -Archive; the archive must be "
                "enabled on-premises",
                "in the Exchange Management Shell on-premises: "
                + command("Enable-RemoteMailbox", {"Identity": upn, "Archive": True})
                + " "
                "(or configure [onprem] so m365archive runs it)",
                category="needs-on-premises",
            )
        )
    else:
        cmd = Cmdlet("Enable-Mailbox", {"Identity": upn, "Archive": True})
        m.out.changes.append(
            change(
                step=NAME,
                key="archive",
                target=upn,
                setting="archive",
                before=False,
                after=True,
                operation=cmdlet_operation(OperationKind.EXCHANGE, cmd, ["already has an archive", "already enabled"]),
                side=EXO,
                category="archive",
                rollback=command("Disable-Mailbox", {"Identity": upn, "Archive": True}),
                rollback_note=rollback.ARCHIVE_DISABLE,
            )
        )
        row.archive_planned = True


def _auto_expanding(m: Mailboxes, row: Row) -> None:
    if not m.cfg.auto_expanding_archive or row.archive_on_premises:
        return
    if not (row.archive_active or row.archive_planned):
        return
    cmd = Cmdlet("Enable-Mailbox", {"Identity": row.upn, "AutoExpandingArchive": True})
    m.out.changes.append(
        change(
            step=NAME,
            key="auto-expanding-archive",
            target=row.upn,
            setting="AutoExpandingArchiveEnabled",
            before=bool(row.mbx.get("AutoExpandingArchiveEnabled")),
            after=True,
            operation=cmdlet_operation(OperationKind.EXCHANGE, cmd, ["already enabled"]),
            side=EXO,
            category="auto-expanding-archive",
            depends_on=[f"{NAME}/archive/{row.upn}"] if row.archive_planned else [],
            warnings=[weighty.AUTO_EXPANDING_ONE_WAY, weighty.AUTO_EXPANDING_LIMITS],
            rollback_note=rollback.AUTO_EXPANDING,
        )
    )


def _hold(m: Mailboxes, row: Row) -> None:
    upn = row.upn
    if m.hold_kind == "retention-policy":
        m.policy_members.append(upn)
        return
    if m.hold_kind != "litigation":
        return
    if not row.user.plans & HOLD_PLANS:
        m.out.findings.append(
            finding(
                NAME,
                upn,
                Severity.WARNING,
                "licence doesn't allow Litigation Hold (needs Exchange Online Plan 2 or Exchange Online Archiving)",
                "assign a Plan 2 or archiving licence",
                category="hold-not-licensed",
            )
        )
        return
    on = bool(row.mbx.get("LitigationHoldEnabled"))
    have = hold_duration(row.mbx.get("LitigationHoldDuration"))
    want = m.want_duration
    cmd = Cmdlet("Set-Mailbox", {"Identity": upn, "LitigationHoldEnabled": True, "LitigationHoldDuration": want})
    m.out.changes.append(
        change(
            step=NAME,
            key="litigation-hold",
            target=upn,
            setting="Litigation Hold",
            before=f"on, {have}" if on else "off",
            after=f"on, {want}",
            operation=cmdlet_operation(OperationKind.EXCHANGE, cmd),
            side=EXO,
            category="litigation-hold",
            warnings=["Litigation Hold preserves every item, including deleted ones, for the hold's duration."],
            rollback=command("Set-Mailbox", {"Identity": upn, "LitigationHoldDuration": have})
            if on
            else command("Set-Mailbox", {"Identity": upn, "LitigationHoldEnabled": False}),
            rollback_note=f"restores the previous hold duration ({have})" if on else rollback.HOLD_RELEASE,
        )
    )


MAILBOX_PARTS: tuple[Callable[[Mailboxes, Row], None], ...] = (_archive, _auto_expanding, _hold)


async def _read_remote_mailboxes(ctx: StepContext, upns: list[str]) -> dict[str, str]:
    """ArchiveState of the synced users' remote mailboxes on-premises, by lower-case UPN."""
    assert ctx.session.onprem is not None
    wanted = {u.lower() for u in upns}
    state: dict[str, str] = {}
    async for page in ctx.session.onprem.pages(Cmdlet("Get-RemoteMailbox", {"ResultSize": "Unlimited"}), 1000):
        for rm in page:
            key = str(rm.get("UserPrincipalName") or rm.get("Identity") or "").lower()
            if key in wanted:
                state[key] = str(rm.get("ArchiveState") or "None")
    ctx.observe("users.onprem_archive", sorted(state.items()))
    return state


def onprem_plan(upns: list[str], state: Mapping[str, str]) -> StepPlan:
    """Synced users' archives, enabled on-premises unless already done there and awaiting sync."""
    out = StepPlan()
    for key, upn in {u.lower(): u for u in upns}.items():
        on_prem = state.get(key)
        if on_prem is None:
            out.findings.append(
                finding(
                    NAME,
                    upn,
                    Severity.WARNING,
                    "directory-synced user with no remote mailbox on-premises",
                    "check the user's recipient type in the on-premises Exchange admin center",
                    category="needs-on-premises",
                )
            )
        elif on_prem in ("HostedProvisioned", "HostedPending"):
            out.findings.append(
                finding(
                    NAME,
                    upn,
                    Severity.INFO,
                    f"archive enabled on-premises ({on_prem}); waiting for directory sync to "
                    "show it in Exchange Online",
                    "nothing to do: it arrives with the next sync",
                    category="pending-directory-sync",
                )
            )
        else:
            cmd = Cmdlet("Enable-RemoteMailbox", {"Identity": upn, "Archive": True})
            out.changes.append(
                change(
                    step=NAME,
                    key="archive",
                    target=upn,
                    setting="archive (on-premises)",
                    before=False if on_prem == "None" else f"{setting_text(False)} ({on_prem})",
                    after=True,
                    operation=cmdlet_operation(OperationKind.ONPREM, cmd, ["already"]),
                    side=ONPREM,
                    category="archive-on-premises",
                    rollback=command("Disable-RemoteMailbox", {"Identity": upn, "Archive": True}),
                    rollback_note="on-premises: " + rollback.ARCHIVE_DISABLE,
                )
            )
    return out


def policy_names(base: str, count: int) -> list[str]:
    """Policies needed to cover `count` mailboxes at 1,000 each: base, "base 2", "base 3", ..."""
    needed = max(1, -(-count // POLICY_LIMIT))
    return [base if i == 0 else f"{base} {i + 1}" for i in range(needed)]


@dataclass(frozen=True)
class Policies:
    """The retention policies read: the base name, each existing one's locations (lower case), and those
    whose distribution is still pending."""

    base: str
    existing: Mapping[str, frozenset[str]]
    pending: frozenset[str] = frozenset()


async def _read_policies(ctx: StepContext, base: str, members: int) -> Policies:
    existing: dict[str, frozenset[str]] = {}
    pending: set[str] = set()
    for name in policy_names(base, members + 1):
        outcome = await ctx.session.compliance.invoke(
            Cmdlet("Get-RetentionCompliancePolicy", {"Identity": name, "DistributionDetail": True})
        )
        if outcome.ok and outcome.objects:
            existing[name] = frozenset(location_names(outcome.objects[0]))
            if str(outcome.objects[0].get("DistributionStatus") or "Success") == "Pending":
                pending.add(name)
        elif outcome.error is not None and not outcome.error.not_found:
            raise outcome.error
    ctx.observe("users.policies", {k: sorted(v) for k, v in existing.items()})
    return Policies(base, existing, frozenset(pending))


def policies_plan(
    policies: Policies, members: list[str], joiners: Mapping[str, tuple[str, ...]], duration: str
) -> StepPlan:
    """Cover the scope with retention policies of at most 1,000 mailboxes each. `joiners` are mailboxes
    other steps add (the catch-all), with the changes that must come first (its mailbox's creation)."""
    out = StepPlan()
    existing = policies.existing
    covered = set().union(*existing.values()) if existing else set()
    queue = [m for m in members if m.lower() not in covered]
    free = {name: POLICY_LIMIT - len(locs) for name, locs in existing.items()}
    for name in policy_names(policies.base, len(members) + sum(len(v) for v in existing.values())):
        if not queue:
            break
        room = free.get(name, POLICY_LIMIT)
        take, queue = queue[:room], queue[room:]
        if not take:
            continue
        deps = sorted({d for m in take for d in joiners.get(m, [])})
        if name not in existing:
            out.changes += new_policy(NAME, name, take, duration, after=f"{len(take)} mailboxes", deps=deps)
        elif name in policies.pending:
            # A policy whose distribution is pending refuses changes ("wait until the policy distribution
            # is successful before running the cmdlet again", Set-RetentionCompliancePolicy): next run.
            out.findings.append(
                finding(
                    NAME,
                    name,
                    Severity.WARNING,
                    f"retention policy '{name}' is still distributing an earlier change (DistributionStatus "
                    f"Pending): {len(take)} mailbox(es) wait for the next run",
                    "run setup again once Get-RetentionCompliancePolicy -DistributionDetail shows Success",
                    category="policy-distribution-pending",
                )
            )
            take = []
        else:
            out.changes.append(_add_locations(name, take, deps))
        out.coverage.append(
            f"retention policy '{name}': {len(existing.get(name, set())) + len(take)} of {POLICY_LIMIT} mailboxes"
        )
    for name, locs in existing.items():
        if not any(line.startswith(f"retention policy '{name}'") for line in out.coverage):
            out.coverage.append(f"retention policy '{name}': {len(locs)} of {POLICY_LIMIT} mailboxes (unchanged)")
    return out


def _add_locations(name: str, take: list[str], deps: list[str]) -> Change:
    """One change per policy: a second Set while the first is distributing would be refused."""
    return change(
        step=NAME,
        key="retention-location",
        target=name,
        setting=f"mailboxes added to '{name}'",
        before=None,
        after=take,
        operation=cmdlet_operation(
            OperationKind.COMPLIANCE,
            Cmdlet("Set-RetentionCompliancePolicy", {"Identity": name, "AddExchangeLocation": take}),
        ),
        side=SCC,
        category="retention-policy",
        depends_on=deps,
    )


def mailboxes_to_change(changes: list[Change]) -> set[str]:
    """The mailboxes (UPNs) that these pending user_mailboxes changes configure, including those a
    retention-policy change adds (what a staged rollout counts)."""
    out: set[str] = set()
    for c in changes:
        if c.step != NAME or c.operation is None:
            continue
        if c.category == "retention-policy":
            params = c.operation.request.get("parameters") or {}
            out.update(str(m) for m in params.get("ExchangeLocation") or params.get("AddExchangeLocation") or [])
        else:
            out.add(c.target)
    return out


def _summarize(out: StepPlan, in_scope: int) -> None:
    counts: dict[str, int] = {}
    for f in out.findings:
        if f.step == NAME:
            counts[f.category] = counts.get(f.category, 0) + 1
    pending = sum(1 for c in out.changes if c.step == NAME and c.operation is not None)
    line = f"user mailboxes: {in_scope:,} licensed users in scope, {pending:,} change(s) planned"
    if counts:
        line += "; not configurable: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))
    out.coverage.insert(0, line)

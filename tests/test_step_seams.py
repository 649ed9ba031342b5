"""Issue 11: each step planned from already-read state (plain dataclasses) returns the expected Changes.

No tenant here: the state is what a step's `read` would have returned; the reads themselves and the
gateways are tested against the simulator elsewhere."""

from __future__ import annotations

from typing import Any

from m365archive.config import Config
from m365archive.engine.plan import Action, Change, OperationKind, WaitKind
from m365archive.licences import plans_granting
from m365archive.steps import catchall_account, catchall_mailbox
from m365archive.steps.catchall_account import AccountState
from m365archive.steps.catchall_mailbox import MailboxState, PolicyState
from m365archive.steps.seams import CatchallUser

TENANT = "6f1c2a4e-3b5d-4c7e-9f10-2a3b4c5d6e7f"
UPN = "thirdpartydata@contoso.onmicrosoft.com"
REVIEWER = "officer@contoso.onmicrosoft.com"
PLAN2 = sorted(plans_granting("plan2"))[0]
E5 = {
    "skuId": "06ebc4ee-1bb5-47dd-8120-11324bc54e06",
    "skuPartNumber": "SPE_E5",
    "prepaidUnits": {"enabled": 10},
    "consumedUnits": 3,
    "servicePlans": [{"servicePlanId": PLAN2}],
}


def config(**extra: Any) -> Config:
    return Config.model_validate(
        {"tenant": {"id": TENANT}, "catchall": {"upn": UPN, "full_access": [{"user": REVIEWER}]}, **extra}
    )


def by_key(changes: list[Change]) -> dict[str, Change]:
    return {c.id.split("/")[1]: c for c in changes}


def account(state: AccountState, cfg: Config | None = None) -> tuple[dict[str, Change], CatchallUser, Any]:
    cfg = cfg or config()
    assert cfg.catchall is not None
    planned = catchall_account.Account(cfg.catchall, state, 60.0).plan()
    return by_key(planned.plan.changes), planned.gives, planned.plan


# --- catchall_account ------------------------------------------------------------------------------


def test_a_new_catchall_is_created_licensed_and_made_exchange_administrator() -> None:
    changes, gives, plan = account(AccountState(("contoso.onmicrosoft.com",), None, (E5,)))
    assert list(changes) == ["create-user", "license", "role"]
    create, licence, role = changes["create-user"], changes["license"], changes["role"]
    assert create.action is Action.CREATE and create.sensitive and create.outputs == {"id": "id"}
    assert create.operation is not None and create.operation.request["path"] == "/users"
    assert licence.action is Action.CREATE and licence.depends_on == [create.id]
    assert licence.wait is not None and licence.wait.kind is WaitKind.EXCHANGE_MAILBOX
    assert licence.operation is not None and "${ref:" in licence.operation.request["path"]  # the id after apply
    assert role.depends_on == [create.id]
    assert gives == CatchallUser(exists=False, mailbox_after=(licence.id,))
    assert [(c.id, c.passed) for c in plan.checks] == [("catchall-domain", True), ("licence-seats", True)]


def test_a_catchall_already_in_place_plans_nothing_and_its_mailbox_waits_for_nothing() -> None:
    user = {"id": "u1", "usageLocation": "US", "assignedLicenses": [{"skuId": E5["skuId"]}]}
    changes, gives, _ = account(AccountState(("contoso.onmicrosoft.com",), user, (E5,), has_role=True))
    assert {k: c.action for k, c in changes.items()} == {
        "usage-location": Action.NOOP,
        "license": Action.NOOP,
        "role": Action.NOOP,
    }
    assert all(c.operation is None for c in changes.values())
    assert gives == CatchallUser(exists=True, mailbox_after=())


def test_an_existing_user_gets_its_usage_location_before_its_licence() -> None:
    user = {"id": "u1", "usageLocation": None, "assignedLicenses": [], "onPremisesSyncEnabled": True}
    changes, gives, plan = account(AccountState(("contoso.onmicrosoft.com",), user, (E5,)))
    assert changes["usage-location"].action is Action.CREATE  # from None
    assert changes["license"].action is Action.UPDATE
    assert changes["license"].depends_on == [changes["usage-location"].id]
    assert gives.mailbox_after == (changes["license"].id,)
    assert [f.message for f in plan.findings] == [
        "the catch-all account is synchronized from on-premises Active Directory"
    ]


def test_no_free_seat_and_an_unverified_domain_are_failed_blocking_checks() -> None:
    full = {**E5, "consumedUnits": 10}
    changes, gives, plan = account(AccountState(("fabrikam.com",), None, (full,)))
    assert "license" not in changes
    assert [(c.id, c.passed, c.blocking) for c in plan.checks] == [
        ("catchall-domain", False, True),
        ("licence-seats", False, True),
    ]
    assert gives.mailbox_after == ()


# --- catchall_mailbox ------------------------------------------------------------------------------


def mailbox(state: MailboxState, user: CatchallUser, cfg: Config | None = None) -> tuple[dict[str, Change], Any]:
    planned = catchall_mailbox.plan_mailbox(cfg or config(), state, user)
    return by_key(planned.plan.changes), planned


def test_a_mailbox_still_to_come_is_planned_with_a_new_mailboxs_values_after_its_licence() -> None:
    user = CatchallUser(exists=False, mailbox_after=("catchall_account/license/x",))
    changes, planned = mailbox(MailboxState(), user)
    assert (changes["hidden"].before, changes["hidden"].after) == ("(new mailbox) off", True)
    assert changes["hidden"].action is Action.UPDATE
    assert changes["auto-expanding-archive"].depends_on == [
        "catchall_account/license/x",
        f"catchall_mailbox/archive/{UPN}",
    ]
    assert changes["audit-default-set"].action is Action.NOOP  # a new mailbox is on Microsoft's defaults already
    assert all(c.depends_on[:1] == ["catchall_account/license/x"] for c in changes.values())
    assert {c.operation.kind for c in changes.values() if c.operation} == {OperationKind.EXCHANGE}
    assert f"fullaccess-{REVIEWER}" in changes
    assert changes["litigation-hold"].after == "on, Unlimited"
    assert dict(planned.gives.mailboxes) == {}


def test_a_configured_mailbox_plans_nothing() -> None:
    read = {
        "HiddenFromAddressListsEnabled": True,
        "ArchiveGuid": "9f3c0b0e-1111-2222-3333-444455556666",
        "AutoExpandingArchiveEnabled": True,
        "LitigationHoldEnabled": True,
        "LitigationHoldDuration": "Unlimited",
        "AuditEnabled": True,
        "DefaultAuditSet": ["Admin", "Delegate", "Owner"],
    }
    state = MailboxState(mailbox=read, full_access=frozenset({REVIEWER}))
    changes, planned = mailbox(state, CatchallUser(exists=True))
    assert {k for k, c in changes.items() if c.action is not Action.NOOP} == set()
    assert planned.plan.findings == []


def test_a_missing_reviewer_is_a_failed_check_and_gets_no_grant() -> None:
    changes, planned = mailbox(MailboxState(missing_reviewers=frozenset({REVIEWER})), CatchallUser())
    assert f"fullaccess-{REVIEWER}" not in changes
    assert [(c.id, c.passed) for c in planned.plan.checks] == [("reviewers", False)]


def test_a_licensed_user_without_a_mailbox_yet_is_a_finding_and_nothing_else() -> None:
    changes, planned = mailbox(MailboxState(not_provisioned=True), CatchallUser(exists=True))
    assert changes == {}
    assert [f.message for f in planned.plan.findings] == [
        "the user exists and is licensed but Exchange Online shows no mailbox yet"
    ]


def test_retention_policy_hold_joins_the_user_policies_or_its_own() -> None:
    hold = {"hold": {"kind": "retention-policy", "retention_policy": "Keep"}}
    user = CatchallUser(exists=False, mailbox_after=("lic",))
    _, joined = mailbox(MailboxState(), user, config(users={"scope": "all"}, **hold))
    assert dict(joined.gives.mailboxes) == {UPN: ("lic",)}  # the user-mailbox step covers it
    _, alone = mailbox(MailboxState(policy=PolicyState("Keep")), user, config(**hold))
    assert [c.id for c in alone.plan.changes if c.category == "retention-policy"] == [
        "catchall_mailbox/retention-policy/Keep",
        "catchall_mailbox/retention-rule/Keep",
    ]
    pending = PolicyState("Keep", exists=True, pending=True)
    _, waiting = mailbox(MailboxState(policy=pending), user, config(**hold))
    assert [f.category for f in waiting.plan.findings] == ["policy-distribution-pending"]


def test_an_organization_with_auditing_off_is_a_finding() -> None:
    _, planned = mailbox(MailboxState(audit_disabled=True), CatchallUser())
    assert [f.target for f in planned.plan.findings] == ["organization"]


# --- legacy_cleanup --------------------------------------------------------------------------------


def leftovers(role_scope: str = "/", enabled: bool = True) -> Any:
    from m365archive.steps.legacy_cleanup import Account, Leftovers

    acct = Account(
        upn=UPN,
        user={"id": "u1", "accountEnabled": enabled},
        roles=[{"id": "a1", "directoryScopeId": role_scope}],
        mailbox={"HiddenFromAddressListsEnabled": True, "LitigationHoldEnabled": True},
    )
    return Leftovers(None, [], [], {UPN: acct}, [UPN], [])


def cleanup(request: Any = None, held: bool | None = True) -> dict[str, Change]:
    from m365archive.steps.legacy_cleanup import Cleanup, plan_cleanup
    from m365archive.steps.seams import CleanupRequest, LocalSecrets

    how = Cleanup(TENANT, 60.0, request or CleanupRequest(), LocalSecrets(lambda upn: held), role_id="r1")
    return by_key(plan_cleanup(leftovers(), how).changes)


def test_cleanup_removes_the_role_blocks_sign_in_then_deletes_the_local_password() -> None:
    changes = cleanup()
    assert {k: c.action for k, c in changes.items()} == {
        "service-principal": Action.NOOP,
        "role": Action.DELETE,
        "sign-in": Action.UPDATE,
        "revoke-sessions": Action.UPDATE,
        "keyring": Action.DELETE,
    }
    role = changes["role"].operation
    assert role is not None and role.request["path"] == "/directoryRoles/r1/members/u1/$ref"
    assert changes["revoke-sessions"].depends_on == [changes["sign-in"].id]
    assert changes["keyring"].depends_on == [changes[k].id for k in ("role", "sign-in", "revoke-sessions")]
    assert changes["keyring"].operation is not None and changes["keyring"].operation.kind is OperationKind.LOCAL


def test_cleanup_rotates_instead_of_blocking_and_leaves_a_keyring_without_the_password_alone() -> None:
    from m365archive.steps.seams import CleanupRequest

    changes = cleanup(CleanupRequest(rotate=True, rotated=(UPN.upper(),)), held=False)
    assert "sign-in" not in changes
    assert changes["password"].before == "rotated by an earlier run" and changes["password"].sensitive
    assert changes["keyring"].action is Action.NOOP


def test_leftovers_for_status_grade_the_account_and_name_the_local_password() -> None:
    from m365archive.steps.legacy_cleanup import leftover_plan
    from m365archive.steps.seams import ConsentReported, LocalSecrets

    findings = leftover_plan(leftovers(), ConsentReported(), LocalSecrets(lambda upn: True)).findings
    assert [(f.category, f.severity.value) for f in findings] == [
        ("legacy-catchall", "critical"),
        ("legacy-keyring", "info"),
    ]
    blocked = leftover_plan(leftovers(enabled=False), ConsentReported(), LocalSecrets()).findings
    assert [(f.category, f.severity.value) for f in blocked] == [("legacy-catchall", "high")]


# --- user_mailboxes --------------------------------------------------------------------------------


def users_plan(hold_kind: str = "litigation", onprem: bool = False, **users: Any) -> Any:
    from m365archive.steps.user_mailboxes import Mailboxes

    cfg = config(users={"scope": "all", "auto_expanding_archive": True, **users})
    return Mailboxes(cfg.users, hold_kind, "Unlimited", onprem)


def row(upn: str, synced: bool = False, **mbx: Any) -> tuple[Any, dict[str, Any]]:
    from m365archive.steps.user_mailboxes import UserRow

    hold = frozenset(plans_granting("hold"))
    return UserRow("id-" + upn, upn, hold, synced), {"RecipientTypeDetails": "UserMailbox", **mbx}


def test_a_user_mailbox_gets_its_archive_then_auto_expanding_then_litigation_hold() -> None:
    plan = users_plan()
    plan.add(*row("a@contoso.com"))
    changes = by_key(plan.out.changes)
    assert list(changes) == ["archive", "auto-expanding-archive", "litigation-hold"]
    assert changes["auto-expanding-archive"].depends_on == [changes["archive"].id]
    assert changes["litigation-hold"].before == "off"


def test_synced_users_go_on_premises_or_are_a_finding_and_other_recipients_are_out_of_scope() -> None:
    plan = users_plan(onprem=True)
    plan.add(*row("s@contoso.com", synced=True))
    plan.add(*row("shared@contoso.com", RecipientTypeDetails="SharedMailbox"))
    assert plan.onprem_archive == ["s@contoso.com"]
    assert [c.id.split("/")[1] for c in plan.out.changes] == ["litigation-hold"]
    assert [f.category for f in plan.out.findings] == ["out-of-scope"]
    alone = users_plan(onprem=False)
    alone.add(*row("s@contoso.com", synced=True))
    assert [f.category for f in alone.out.findings] == ["needs-on-premises"]


def test_on_premises_archives_are_enabled_unless_already_waiting_for_sync() -> None:
    from m365archive.steps.user_mailboxes import onprem_plan

    out = onprem_plan(["A@x.com", "b@x.com", "c@x.com"], {"a@x.com": "None", "b@x.com": "HostedPending"})
    assert [(c.target, c.before, c.after) for c in out.changes] == [("A@x.com", False, True)]
    assert [(f.target, f.category) for f in out.findings] == [
        ("b@x.com", "pending-directory-sync"),
        ("c@x.com", "needs-on-premises"),
    ]


def test_retention_policies_fill_up_to_1000_and_a_pending_one_waits() -> None:
    from m365archive.steps.user_mailboxes import Policies, policies_plan

    members = [f"u{i}@x.com" for i in range(1500)]
    new = policies_plan(Policies("Keep", {}), members, {"u0@x.com": ("lic",)}, "Unlimited")
    assert [c.id for c in new.changes] == [
        "user_mailboxes/retention-policy/Keep",
        "user_mailboxes/retention-rule/Keep",
        "user_mailboxes/retention-policy/Keep 2",
        "user_mailboxes/retention-rule/Keep 2",
    ]
    assert new.changes[0].depends_on == ["lic"] and new.changes[2].depends_on == []
    full = frozenset(m.lower() for m in members[:1000])
    pending = policies_plan(Policies("Keep", {"Keep": full, "Keep 2": frozenset()}, frozenset({"Keep 2"})), members,
                            {}, "Unlimited")  # fmt: skip
    assert pending.changes == [] and [f.category for f in pending.findings] == ["policy-distribution-pending"]


# --- connector_readiness ---------------------------------------------------------------------------


def test_data_connector_admin_held_added_or_advised_from_the_role_groups_read() -> None:
    import pytest

    from m365archive.partners import DATA_CONNECTOR_ADMIN_ROLE
    from m365archive.steps.base import StepError
    from m365archive.steps.connector_readiness import RoleGroups, role_group_plan

    groups = ({"Name": "ComplianceAdministrator", "Guid": "g1", "Roles": [f"x/{DATA_CONNECTOR_ADMIN_ROLE}"]},)
    connector = config(procedure="purview-connector", catchall=None).connector
    held = role_group_plan(connector, RoleGroups("me@x.com", groups, ("ComplianceAdministrator",)))
    assert [(c.before, c.action) for c in held.changes] == [("via ComplianceAdministrator", Action.NOOP)]
    advised = role_group_plan(connector, RoleGroups("me@x.com", groups))
    assert advised.changes == [] and [f.category for f in advised.findings] == ["data-connector-admin"]
    adding = role_group_plan(
        connector.model_copy(update={"add_role_group_member": True}), RoleGroups("me@x.com", groups)
    )
    assert [(c.after, c.action) for c in adding.changes] == [("via ComplianceAdministrator", Action.CREATE)]
    with pytest.raises(StepError, match="does not exist"):
        role_group_plan(connector.model_copy(update={"role_group": "Nope"}), RoleGroups("me@x.com", groups))


# --- connector_consent and partner_handoff ---------------------------------------------------------


def endpoints(cloud: str = "global") -> Any:
    from m365archive.tenant.session import Endpoints

    return Endpoints(TENANT, "contoso.onmicrosoft.com", cloud, "g", "e", "c", "https://login.microsoftonline.com",
                     "gs", "es", "cs")  # fmt: skip


def test_consent_present_is_flagged_as_retired_access_and_absent_is_the_manual_step() -> None:
    from m365archive.steps.connector_consent import ConsentState, consent_plan

    present = consent_plan(ConsentState(True, {"id": "sp1"}), endpoints())
    assert present.gives.reported and [f.severity.value for f in present.plan.findings] == ["warning"]
    assert present.plan.instructions == []
    absent = consent_plan(ConsentState(False), endpoints("gcc-high"))
    assert [c.passed for c in absent.plan.checks] == [False] and absent.gives.reported
    assert f"/{TENANT}/" in absent.plan.instructions[0]  # the consent URL names this tenant
    assert absent.plan.instructions[1].startswith("The consent URL is unverified for the gcc-high cloud")


def test_the_handoff_names_the_partner_the_endpoint_and_the_password_it_gives_away() -> None:
    from m365archive.steps.partner_handoff import handoff_plan
    from m365archive.tenant.clouds import get_cloud

    chosen = handoff_plan(config(partner="17a-4 LLC"), get_cloud("global"))
    none = handoff_plan(config(), get_cloud("global"))
    assert [(c.id, c.passed) for c in none.checks] == [("partner", False)]
    assert any(f.category == "handoff" and f.severity.value == "high" and f.target == UPN for f in chosen.findings)
    assert chosen.instructions[0].startswith("Step 4 (manual): give the partner the ingestion endpoint https://")


def test_a_partner_apps_service_principal_and_the_audit_switches_from_what_was_read() -> None:
    from m365archive.steps.connector_readiness import auditing_plan, find_connector, service_principal_plan

    merge1 = find_connector("veritas-merge1")
    new = service_principal_plan(merge1, "app-1", None, 60.0).changes
    assert [(c.action, c.wait.kind if c.wait else None) for c in new] == [(Action.CREATE, WaitKind.SERVICE_PRINCIPAL)]
    there = service_principal_plan(merge1, "app-1", {"id": "sp1"}, 60.0)
    assert [c.action for c in there.changes] == [Action.NOOP] and [c.passed for c in there.checks] == [True]
    off = auditing_plan(unified=False, audit_disabled=True, audit_enabled=True)
    assert [(c.id, c.passed) for c in off.checks] == [("audit-log", False)]
    assert [f.category for f in off.findings] == ["audit"]
    assert [(c.before, c.after, c.action) for c in off.changes] == [(True, False, Action.UPDATE)]
    assert [c.action for c in auditing_plan(True, False, True).changes] == [Action.NOOP]

"""Renderers: what the change ticket, the console, JSON and CSV show, and what they never show."""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from m365archive.engine.checks import Check
from m365archive.engine.plan import (
    KNOWN_AFTER_APPLY,
    Action,
    Change,
    Finding,
    Operation,
    Plan,
    Severity,
    ref,
    secret,
)
from m365archive.engine.runner import ApplyResult, ChangeOutcome
from m365archive.report import console, csvout, jsonout, markdown
from m365archive.steps import rollback

NOTICE = (
    "This procedure is retired. EWS-based partner ingestion was retired on 2024-12-30. "
    "See https://learn.microsoft.com/purview/archive-partner-third-party-data."
)
UPN = "third-party@contoso.com"
CREATE_ID = f"catchall_account/create-user/{UPN}"
USER_REF = ref(CREATE_ID, "id")
SECRET_MARKER = secret("catchall-password")
SAMPLE_PASSWORD = "Tr0" + secrets.token_urlsafe(12) + "&3"  # made at run time, never a literal
ROLE_WARNING = (
    "The catch-all account holds the Exchange Administrator role, and the documented procedure "
    "hands its password to the partner: an administrator credential leaves the organization."
)
HOLD_WARNING = "Litigation Hold preserves every item, including deleted ones, for the hold's duration."


def graph_op(method: str, path: str, body: dict[str, object] | None = None, powershell: str = "") -> Operation:
    request: dict[str, object] = {"method": method, "path": path}
    if body is not None:
        request["body"] = body
    return Operation("graph", request, f"{method} /v1.0{path}", powershell)


def cmdlet_op(name: str, line: str, **parameters: object) -> Operation:
    return Operation("exchange", {"cmdlet": name, "parameters": parameters}, line, line)


def create_user(password: str = SECRET_MARKER) -> Change:
    body = {
        "accountEnabled": True,
        "displayName": "Third-party data",
        "mailNickname": "third-party",
        "userPrincipalName": UPN,
        "usageLocation": "US",
        "passwordProfile": {"forceChangePasswordNextSignIn": False, "password": password},
    }
    return Change(
        id=CREATE_ID,
        step="catchall_account",
        target=UPN,
        setting="user account",
        action=Action.CREATE,
        before=None,
        after={"userPrincipalName": UPN, "displayName": "Third-party data", "accountEnabled": True},
        operation=graph_op(
            "POST",
            "/users",
            body,
            f"New-MgUser -UserPrincipalName {UPN} -DisplayName 'Third-party data' -MailNickname third-party "
            "-UsageLocation US -AccountEnabled -PasswordProfile @{Password=<generated>}",
        ),
        side="Microsoft Graph",
        sensitive=True,
        outputs={"id": "id"},
        warnings=["The password is generated on this machine and kept in its keyring; it is never printed."],
        rollback=f"Remove-MgUser -UserId {UPN} (deletes the account; its mailbox is soft-deleted for 30 days)",
    )


def role_change() -> Change:
    return Change(
        id=f"catchall_account/role/{UPN}",
        step="catchall_account",
        target=UPN,
        setting="directory role",
        action=Action.CREATE,
        before=None,
        after="Exchange Administrator",
        operation=graph_op(
            "POST",
            "/roleManagement/directory/roleAssignments",
            {
                "principalId": USER_REF,
                "roleDefinitionId": "29232cdf-9323-42fd-ade2-1d097af3e4de",
                "directoryScopeId": "/",
            },
            f"New-MgRoleManagementDirectoryRoleAssignment -PrincipalId {UPN} "
            "-RoleDefinitionId 29232cdf-9323-42fd-ade2-1d097af3e4de -DirectoryScopeId '/'",
        ),
        side="Microsoft Graph",
        depends_on=[CREATE_ID],
        warnings=[ROLE_WARNING],
        rollback=rollback.role_assignment_removal(UPN, None, "29232cdf-9323-42fd-ade2-1d097af3e4de"),
        rollback_note=rollback.EXCHANGE_ADMIN_REMOVE,
    )


def mailbox_changes() -> list[Change]:
    hold = "Set-Mailbox -Identity third-party@contoso.com -LitigationHoldEnabled $true -LitigationHoldDuration 2555"
    return [
        Change(
            id=f"catchall_mailbox/hidden/{UPN}",
            step="catchall_mailbox",
            target=UPN,
            setting="HiddenFromAddressListsEnabled",
            action=Action.NOOP,
            before=True,
            after=True,
            side="Exchange Online",
        ),
        Change(
            id=f"catchall_mailbox/fullaccess-legal/{UPN}",
            step="catchall_mailbox",
            target=UPN,
            setting="FullAccess for Legal | Review",
            action=Action.CREATE,
            before=None,
            after="granted",
            operation=cmdlet_op(
                "Add-MailboxPermission",
                f"Add-MailboxPermission -Identity {UPN} -User 'Legal | Review' -AccessRights FullAccess "
                "-AutoMapping $false",
                Identity=UPN,
                User="Legal | Review",
                AccessRights=["FullAccess"],
                AutoMapping=False,
            ),
            side="Exchange Online",
            rollback=f"Remove-MailboxPermission -Identity {UPN} -User 'Legal | Review' -AccessRights FullAccess",
        ),
        Change(
            id=f"catchall_mailbox/litigation-hold/{UPN}",
            step="catchall_mailbox",
            target=UPN,
            setting="Litigation Hold",
            action=Action.UPDATE,
            before="off",
            after="on, 2555",
            operation=cmdlet_op(
                "Set-Mailbox", hold, Identity=UPN, LitigationHoldEnabled=True, LitigationHoldDuration="2555"
            ),
            side="Exchange Online",
            warnings=[HOLD_WARNING],
            rollback=f"Set-Mailbox -Identity {UPN} -LitigationHoldEnabled $false (preservation stops)",
        ),
    ]


def make_plan(changes: list[Change] | None = None) -> Plan:
    return Plan(
        procedure="partner-ews",
        tenant={"id": "8f0c4b5e-1111-2222-3333-444455556666", "domain": "contoso.com", "cloud": "global"},
        operator="admin@contoso.com",
        tool_version="0.1.0",
        changes=changes if changes is not None else [create_user(), role_change(), *mailbox_changes()],
        findings=[
            Finding(
                "catchall_mailbox",
                "organization",
                Severity.WARNING,
                "mailbox auditing is turned off for the whole organization",
                "Set-OrganizationConfig -AuditDisabled $false",
            ),
            Finding(
                "catchall_account",
                "[bold]x | y",
                Severity.HIGH,
                "synchronized from on-premises",
                "use a cloud-only account",
            ),
        ],
        checks=[
            Check("licence-seats", "ENTERPRISEPACK: 3 free seat(s)", True, True),
            Check(
                "roles",
                "the operator lacks Privileged Role Administrator",
                False,
                False,
                "sign in as a Privileged Role Administrator",
            ),
        ],
        notices=[NOTICE],
        instructions=[
            "Open the Purview portal > Data connectors and create the connector.",
            "Give the partner the catch-all sign-in through a channel you trust.",
        ],
        coverage=["retention policy 'Archive' covers 12 of 12 mailboxes"],
        fingerprint="sha256:" + "ab" * 32,
        plan_id="11111111-2222-3333-4444-555555555555",
        created="2025-01-02T03:04:05+00:00",
    )


def big_plan(count: int = 500) -> Plan:
    changes = []
    for n in range(count):
        upn = f"user{n:03d}@contoso.com"
        if n % 2 == 0:
            changes.append(
                Change(
                    id=f"user_mailboxes/archive/{upn}",
                    step="user_mailboxes",
                    target=upn,
                    setting="archive mailbox",
                    action=Action.CREATE,
                    before="None",
                    after="Active",
                    operation=cmdlet_op(
                        "Enable-Mailbox", f"Enable-Mailbox -Identity {upn} -Archive", Identity=upn, Archive=True
                    ),
                    side="Exchange Online",
                    category="archive",
                    warnings=["Archive on"],
                )
            )
        else:
            changes.append(
                Change(
                    id=f"user_mailboxes/hold/{upn}",
                    step="user_mailboxes",
                    target=upn,
                    setting="Litigation Hold",
                    action=Action.UPDATE,
                    before="off",
                    after="on, 2555",
                    operation=cmdlet_op(
                        "Set-Mailbox",
                        f"Set-Mailbox -Identity {upn} -LitigationHoldEnabled $true",
                        Identity=upn,
                        LitigationHoldEnabled=True,
                    ),
                    side="Exchange Online",
                    category="hold",
                    warnings=[HOLD_WARNING],
                )
            )
    changes.append(
        Change(
            id="user_mailboxes/archive/done@contoso.com",
            step="user_mailboxes",
            target="done@contoso.com",
            setting="archive mailbox",
            action=Action.NOOP,
            before="Active",
            after="Active",
            side="Exchange Online",
            category="archive",
        )
    )
    return make_plan([create_user(), *changes])


def result_for(plan: Plan) -> ApplyResult:
    pending = plan.pending
    outcomes = [ChangeOutcome(c.id, c.target, c.setting, "ok", request_id=f"req-{i}") for i, c in enumerate(pending)]
    outcomes[2] = ChangeOutcome(
        pending[2].id,
        pending[2].target,
        pending[2].setting,
        "failed",
        "The user 'Legal | Review' couldn't be found.",
        "req-x",
    )
    return ApplyResult(run_id="run-1", outcomes=outcomes[:-1])  # the last change never ran


# Markdown plan -------------------------------------------------------------------------------------


def test_plan_report_opens_with_the_notice_under_the_title() -> None:
    report = markdown.render_plan(make_plan())
    lines = report.splitlines()
    assert lines[0] == "# m365archive change plan"
    assert lines[1] == ""
    assert lines[2] == f"> **⚠ Notice:** {NOTICE}"
    assert report.index("> **⚠ Notice:**") < report.index("| Tenant |")


def test_plan_report_header_summary_and_checks() -> None:
    report = markdown.render_plan(make_plan())
    for row in (
        "| Tenant | 8f0c4b5e-1111-2222-3333-444455556666 (contoso.com) |",
        "| Cloud | global |",
        "| Procedure | partner-ews |",
        "| Operator | admin@contoso.com |",
        "| Created | 2025-01-02T03:04:05+00:00 |",
        "| Tool version | 0.1.0 |",
        "| Plan id | 11111111-2222-3333-4444-555555555555 |",
        "| Fingerprint | sha256:" + "ab" * 32 + " |",
    ):
        assert row in report
    assert "| create | update | delete | no-op |\n|---:|---:|---:|---:|\n| 3 | 1 | 0 | 1 |" in report
    assert "| 0 | 1 | 1 | 0 |" in report  # critical, high, warning, info
    assert "| ENTERPRISEPACK: 3 free seat(s) | pass | — |" in report
    # a failed advisory check is said so, with its remedy, not "FAIL"
    advisory = report[report.index("Advisory: shown with what to do") :]
    assert (
        "| the operator lacks Privileged Role Administrator | not met (advisory) | "
        "sign in as a Privileged Role Administrator |" in advisory
    )


def test_plan_report_step_tables_in_plan_order() -> None:
    report = markdown.render_plan(make_plan())
    assert report.index("### catchall_account") < report.index("### catchall_mailbox")
    assert f"| {UPN} | directory role | (none) → Exchange Administrator | create | Microsoft Graph |" in report
    assert f"| {UPN} | Litigation Hold | off → on, 2555 | update | Exchange Online |" in report
    assert f"| {UPN} | HiddenFromAddressListsEnabled | on | no-op | Exchange Online |" in report


def test_plan_report_exact_operations_show_request_body_powershell_and_rollback() -> None:
    report = markdown.render_plan(make_plan())
    ops = report[report.index("## Exact operations") : report.index("## Findings")]
    assert "```http\nPOST /v1.0/roleManagement/directory/roleAssignments\n```" in ops
    assert (
        '```json\n{\n  "principalId": "(known after apply)",\n'
        '  "roleDefinitionId": "29232cdf-9323-42fd-ade2-1d097af3e4de",\n  "directoryScopeId": "/"\n}\n```'
    ) in ops
    assert "```powershell\nNew-MgRoleManagementDirectoryRoleAssignment -PrincipalId" in ops
    removal = rollback.role_assignment_removal(UPN, None, "29232cdf-9323-42fd-ade2-1d097af3e4de")
    assert f"Rollback: {rollback.EXCHANGE_ADMIN_REMOVE}\n\n```powershell\n{removal}\n```" in ops
    assert "(Get-MgUser -UserId 'third-party@contoso.com').Id" in removal  # the id, resolved when it exists
    # an Exchange cmdlet is its own PowerShell line: shown once
    hold = "Set-Mailbox -Identity third-party@contoso.com -LitigationHoldEnabled $true -LitigationHoldDuration 2555"
    assert ops.count(hold) == 1
    assert f"Cmdlet (exchange):\n\n```powershell\n{hold}\n```" in ops
    # no-op changes have no operation to show
    assert "HiddenFromAddressListsEnabled" not in ops


def test_plan_report_placeholders_are_words() -> None:
    report = markdown.render_plan(make_plan())
    assert KNOWN_AFTER_APPLY in report
    assert "${ref:" not in report
    assert "${secret:" not in report
    assert '"password": "(sensitive value)"' in report


def test_plan_report_placeholder_inside_a_path_is_replaced_in_place() -> None:
    license_change = Change(
        id=f"catchall_account/license/{UPN}",
        step="catchall_account",
        target=UPN,
        setting="licence",
        action=Action.CREATE,
        before=None,
        after="ENTERPRISEPACK",
        operation=graph_op("POST", f"/users/{USER_REF}/assignLicense", {"addLicenses": [], "removeLicenses": []}),
        side="Microsoft Graph",
    )
    report = markdown.render_plan(make_plan([license_change]))
    assert "POST /v1.0/users/(known after apply)/assignLicense" in report


def test_sensitive_change_never_shows_the_secret_marker_or_a_literal_password() -> None:
    # A step bug: a literal password in the body, echoed in the PowerShell line and a "note" field.
    leaky = create_user(password=SAMPLE_PASSWORD)
    assert leaky.operation is not None
    leaky.operation.powershell += f" -Note 'initial {SAMPLE_PASSWORD}'"
    leaky.operation.request["body"]["notes"] = f"first sign-in with {SAMPLE_PASSWORD}"
    leaky.after = {"userPrincipalName": UPN, "initialPassword": SAMPLE_PASSWORD}
    plan = make_plan([leaky, create_user()])
    out = io.StringIO()
    console.print_plan(Console(file=out, width=200, color_system=None), plan, verbose=True)
    csv_file = io.StringIO()
    csvout.write_changes(csv_file, plan)
    outputs = {
        "markdown": markdown.render_plan(plan),
        "status": markdown.render_status(plan),
        "json": json.dumps(jsonout.plan_document(plan)),
        "status-json": json.dumps(jsonout.status_document(plan)),
        "console": out.getvalue(),
        "csv": csv_file.getvalue(),
    }
    for name, rendered in outputs.items():
        assert "catchall-password" not in rendered, name
        assert "${secret" not in rendered, name
        assert SAMPLE_PASSWORD not in rendered, name
        assert "Tr0ub4dor" not in rendered, name
    assert "first sign-in with (sensitive value)" in outputs["markdown"]
    assert "@{Password=<generated>}" in outputs["markdown"]  # a placeholder, not a secret: kept


def test_credential_keys_are_masked_even_when_the_value_is_a_placeholder() -> None:
    doc = jsonout.plan_document(make_plan())
    body = doc["changes"][0]["operation"]["request"]["body"]
    assert body["passwordProfile"] == {"forceChangePasswordNextSignIn": False, "password": "(sensitive value)"}
    assert body["userPrincipalName"] == UPN


def test_warnings_are_listed_once_with_their_targets() -> None:
    report = markdown.render_plan(big_plan(30))
    section = report[report.index("## Warnings") : report.index("## Changes")]
    assert section.count(HOLD_WARNING) == 1
    assert f"- **{HOLD_WARNING}**\n  Applies to: user001@contoso.com, user003@contoso.com," in section
    assert "user019@contoso.com and 5 more" in section
    assert "Archive on" in section


def test_table_pipes_in_tenant_strings_are_escaped() -> None:
    report = markdown.render_plan(make_plan())
    row = next(r for r in report.splitlines() if "FullAccess for Legal" in r and r.startswith("|"))
    assert row == f"| {UPN} | FullAccess for Legal \\| Review | (none) → granted | create | Exchange Online |"
    assert len(re.findall(r"(?<!\\)\|", row)) == 6
    assert "| HIGH | catchall_account | [bold]x \\| y | synchronized from on-premises |" in report


def test_findings_coverage_and_manual_steps_at_the_end() -> None:
    report = markdown.render_plan(make_plan())
    findings = report.index("## Findings")
    assert findings < report.index("## Coverage") < report.index("## Manual steps")
    assert report.index("| HIGH |") < report.index("| WARNING |")  # most severe first
    assert (
        "| WARNING | catchall_mailbox | organization | mailbox auditing is turned off for the whole organization "
        "| Set-OrganizationConfig -AuditDisabled $false |"
    ) in report
    assert "- retention policy 'Archive' covers 12 of 12 mailboxes" in report
    manual = report[report.index("## Manual steps") : report.index("## Sign-off")]
    assert manual.rstrip().endswith(
        "1. Open the Purview portal > Data connectors and create the connector.\n"
        "2. Give the partner the catch-all sign-in through a channel you trust."
    )
    assert "| Change window |   |" in report.split("## Appendix: plan digest")[0]  # sign-off before the digest


def test_a_large_step_is_summarized_with_an_appendix() -> None:
    report = markdown.render_plan(big_plan(500))
    changes = report[report.index("### user_mailboxes") : report.index("## Exact operations")]
    assert "500 pending changes: summarized by category and setting" in changes
    assert "| Category | Setting | create | update | delete | no-op |" in changes
    assert "| archive | archive mailbox | 250 | 0 | 0 | 1 |" in changes
    assert "| hold | Litigation Hold | 0 | 250 | 0 | 0 |" in changes
    assert "user000@contoso.com" not in changes
    # one example per operation shape, not 500 operations
    ops = report[report.index("## Exact operations") : report.index("## Findings")]
    assert "#### `Enable-Mailbox -Identity -Archive` — 250 change(s)" in ops
    assert "#### `Set-Mailbox -Identity -LitigationHoldEnabled` — 250 change(s)" in ops
    assert ops.count("```powershell\nEnable-Mailbox") == 1
    # the appendix is last and lists every target
    appendix = report[report.index("## Appendix: user_mailboxes") :]
    assert report.index("## Manual steps") < report.index("## Appendix: user_mailboxes")
    assert "| user499@contoso.com | Litigation Hold | off → on, 2555 | update | Exchange Online |" in appendix
    assert appendix.count("@contoso.com |") == 501
    # the small step beside it keeps its full table
    assert "## Appendix: catchall_account" not in report


def test_many_findings_are_counted_and_listed_in_an_appendix() -> None:
    plan = make_plan()
    plan.findings = [
        Finding(
            "user_mailboxes",
            f"synced{n}@contoso.com",
            Severity.WARNING,
            "synchronized from on-premises: its archive is enabled there",
            "Enable-RemoteMailbox -Archive",
            category="hybrid",
        )
        for n in range(60)
    ]
    report = markdown.render_plan(plan)
    section = report[report.index("## Findings") : report.index("## Coverage")]
    assert "60 findings: what this plan will not or cannot change" in section
    assert "| WARNING | user_mailboxes | hybrid | 60 |" in section
    assert "synced0@contoso.com" not in section
    appendix = report[report.index("## Appendix: findings") :]
    assert appendix.count("| WARNING | user_mailboxes | synced") == 60


def test_threshold_is_a_parameter() -> None:
    assert "## Appendix: user_mailboxes" not in markdown.render_plan(big_plan(20))
    assert "## Appendix: user_mailboxes" in markdown.render_plan(big_plan(20), appendix_threshold=5)


def test_empty_plan() -> None:
    report = markdown.render_plan(make_plan([]), title="Dry run")
    assert report.startswith("# Dry run\n\n> **⚠ Notice:**")
    assert "The plan holds no changes." in report
    assert "None: every setting is already in the desired state." in report


def test_backticks_in_a_tenant_string_cannot_close_a_code_block() -> None:
    change = mailbox_changes()[1]
    assert change.operation is not None
    change.operation.display = change.operation.powershell = "Add-MailboxPermission -User '```evil'"
    report = markdown.render_plan(make_plan([change]))
    assert "````powershell\nAdd-MailboxPermission -User '```evil'\n````" in report


# Markdown status and apply result --------------------------------------------------------------------


def test_status_report_desired_vs_actual() -> None:
    report = markdown.render_status(make_plan())
    assert report.startswith(f"# m365archive status\n\n> **⚠ Notice:** {NOTICE}")
    assert "| in sync | DRIFT | findings: critical | findings: high | findings: warning | findings: info |" in report
    assert "| 1 | 4 | 0 | 1 | 1 | 0 |" in report
    assert "| Target | Setting | Desired | Actual | State |" in report
    assert f"| {UPN} | Litigation Hold | on, 2555 | off | **DRIFT** |" in report
    assert f"| {UPN} | HiddenFromAddressListsEnabled | on | on | in sync |" in report
    assert "| HIGH | catchall_account | [bold]x \\| y |" in report
    assert "${" not in report


def test_apply_result_report_lists_failures_and_what_never_ran() -> None:
    plan = make_plan()
    report = markdown.render_apply_result(plan, result_for(plan))
    assert "| Status | partial |" in report
    assert "| Run id | run-1 |" in report
    assert (
        "| ok | resumed | failed | interrupted | skipped | not run |\n"
        "|---:|---:|---:|---:|---:|---:|\n| 2 | 0 | 1 | 0 | 0 | 1 |"
    ) in report
    failures = report[report.index("## Failures") : report.index("## Outcomes per step")]
    assert (
        f"| catchall_mailbox | {UPN} | FullAccess for Legal \\| Review | FAILED | "
        "The user 'Legal \\| Review' couldn't be found. | req-x |"
    ) in failures
    assert (
        f"| catchall_mailbox | {UPN} | Litigation Hold | NOT RUN | the run stopped before this change | — |" in failures
    )


def test_apply_result_report_summarizes_large_steps() -> None:
    plan = big_plan(200)
    report = markdown.render_apply_result(plan, result_for(plan))
    assert "200 outcomes, counted by setting (failures are listed above)." in report
    assert "| archive mailbox | ok | 100 |" in report
    assert "| Litigation Hold | ok | 98 |" in report
    assert "| Litigation Hold | failed | 1 |" in report
    assert "| Litigation Hold | not run | 1 |" in report


# JSON -------------------------------------------------------------------------------------------------


def test_envelope_contract() -> None:
    doc = jsonout.envelope("setup", "success", 0, {"a": 1}, ["done"], [])
    assert list(doc) == ["format_version", "command", "status", "exit_code", "data", "messages", "errors"]
    assert tuple(doc) == jsonout.ENVELOPE_KEYS
    assert doc == {
        "format_version": "1",
        "command": "setup",
        "status": "success",
        "exit_code": 0,
        "data": {"a": 1},
        "messages": ["done"],
        "errors": [],
    }
    json.dumps(doc)


def test_plan_document_is_a_presented_report() -> None:
    plan = make_plan()
    doc = jsonout.plan_document(plan)
    assert doc["format_version"] == "1"
    assert doc["kind"] == "report"
    assert doc["report"] == "plan"
    assert doc["plan_kind"] == "setup"
    assert doc["plan_id"] == plan.plan_id
    assert doc["notices"] == [NOTICE]
    assert doc["summary"] == {
        "changes": {"create": 3, "update": 1, "delete": 0, "no-op": 1},
        "pending": 4,
        "findings": {"critical": 0, "high": 1, "warning": 1, "info": 0, "accepted": 0},
    }
    assert doc["checks"][1] == {
        "id": "roles",
        "title": "the operator lacks Privileged Role Administrator",
        "blocking": False,
        "passed": False,
        "remedy": "sign in as a Privileged Role Administrator",
    }
    assert {"warning": HOLD_WARNING, "targets": [UPN]} in doc["warnings"]
    role = doc["changes"][1]
    assert role["operation"]["request"]["body"]["principalId"] == KNOWN_AFTER_APPLY
    assert role["operation"]["display"] == "POST /v1.0/roleManagement/directory/roleAssignments"
    assert role["action"] == "create"
    assert doc["findings"][0]["severity"] == "high"
    assert doc["instructions"] == plan.instructions
    assert doc["coverage"] == plan.coverage
    text = json.dumps(doc)
    assert "${" not in text


def test_status_document() -> None:
    doc = jsonout.status_document(make_plan())
    assert doc["report"] == "status"
    assert doc["summary"]["in_sync"] == 1
    assert doc["summary"]["drift"] == 4
    hold = next(s for s in doc["settings"] if s["setting"] == "Litigation Hold")
    assert (hold["desired"], hold["actual"], hold["state"]) == ("on, 2555", "off", "drift")
    hidden = next(s for s in doc["settings"] if s["setting"] == "HiddenFromAddressListsEnabled")
    assert hidden["state"] == "in-sync"


def test_result_document() -> None:
    plan = make_plan()
    doc = jsonout.result_document(plan, result_for(plan))
    assert doc["report"] == "apply-result"
    assert doc["status"] == "partial"
    assert doc["summary"] == {"ok": 2, "resumed": 0, "failed": 1, "interrupted": 0, "skipped": 0, "not run": 1}
    failed = next(o for o in doc["outcomes"] if o["outcome"] == "failed")
    assert failed == {
        "change_id": f"catchall_mailbox/fullaccess-legal/{UPN}",
        "step": "catchall_mailbox",
        "target": UPN,
        "setting": "FullAccess for Legal | Review",
        "action": "create",
        "side": "Exchange Online",
        "outcome": "failed",
        "detail": "The user 'Legal | Review' couldn't be found.",
        "request_id": "req-x",
    }


# CSV --------------------------------------------------------------------------------------------------


def test_csv_rows_for_a_plan(tmp_path: Path) -> None:
    path = tmp_path / "changes.csv"
    csvout.write_changes(path, make_plan())
    rows = list(csv.DictReader(path.open(encoding="utf-8", newline="")))
    assert list(rows[0]) == ["target", "step", "setting", "before", "after", "action", "side", "outcome", "detail"]
    assert len(rows) == 5
    assert rows[0]["after"] == f"userPrincipalName: {UPN}; displayName: Third-party data; accountEnabled: on"
    assert rows[3] == {
        "target": UPN,
        "step": "catchall_mailbox",
        "setting": "FullAccess for Legal | Review",
        "before": "(none)",
        "after": "granted",
        "action": "create",
        "side": "Exchange Online",
        "outcome": "",
        "detail": "",
    }


def test_csv_rows_with_outcomes() -> None:
    plan = make_plan()
    out = io.StringIO()
    csvout.write_changes(out, plan, result_for(plan))
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["outcome"] for r in rows] == ["ok", "ok", "no-op", "failed", "not run"]
    assert rows[3]["detail"] == "The user 'Legal | Review' couldn't be found."


def test_csv_neutralizes_formulas() -> None:
    change = mailbox_changes()[1]
    change.target = '=HYPERLINK("http://x")'
    out = io.StringIO()
    csvout.write_changes(out, make_plan([change]))
    row = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["target"] == '\'=HYPERLINK("http://x")'


# Console ------------------------------------------------------------------------------------------------


def render(fn: object, *args: object, **kwargs: object) -> str:
    out = io.StringIO()
    assert callable(fn)
    fn(Console(file=out, width=200, color_system=None), *args, **kwargs)
    return out.getvalue()


def test_console_plan_notice_first_and_markup_literal() -> None:
    plan = make_plan()
    plan.changes[3].target = "[bold]x"
    output = render(console.print_plan, plan)
    assert output.splitlines()[0].startswith("╭─ Notice ")
    assert output.index("This procedure is retired.") < output.index("Tenant")
    assert "[bold]x" in output
    assert "[bold]x | y" in output  # a finding's target
    assert "${" not in output
    assert "Plan: 3 to create, 1 to update, 0 to delete, 1 unchanged. Findings: 1 high, 1 warning." in output
    assert "advisory" in output and "sign in as a Privileged Role Administrator" in output
    assert "1. Open the Purview portal > Data connectors and create the connector." in output
    # not verbose: no exact operations
    assert "POST /v1.0/users" not in output


def test_console_plan_verbose_shows_exact_operations() -> None:
    output = render(console.print_plan, make_plan(), verbose=True)
    assert "POST /v1.0/roleManagement/directory/roleAssignments" in output
    assert '"principalId": "(known after apply)"' in output
    assert "Set-Mailbox -Identity third-party@contoso.com -LitigationHoldEnabled $true" in output
    assert "${" not in output


def test_console_large_step_is_summarized() -> None:
    output = render(console.print_plan, big_plan(500), verbose=True)
    assert "user_mailboxes (250 create, 250 update, 1 no-op; summarized)" in output
    assert re.search(r"archive\s+│\s+archive mailbox\s+│\s+250\s+│\s+0\s+│\s+0\s+│\s+1", output)
    assert "Enable-Mailbox -Identity -Archive × 250 (example: user000@contoso.com)" in output
    assert "user499@contoso.com" not in output


def test_console_status() -> None:
    output = render(console.print_status, make_plan())
    assert "catchall_mailbox: 1 in sync, 2 DRIFT" in output
    assert "DRIFT" in output
    assert "Status: 1 in sync, 4 DRIFT. Findings: 1 high, 1 warning." in output
    assert "[bold]x | y" in output


def test_console_apply_result() -> None:
    plan = make_plan()
    output = render(console.print_apply_result, plan, result_for(plan))
    assert "The user 'Legal | Review' couldn't be found." in output
    assert "the run stopped before this change" in output
    assert "Apply partial: 2 ok, 1 failed, 1 not run (run run-1)." in output


# Boundaries ----------------------------------------------------------------------------------------------


def test_report_package_knows_no_cli_or_sdk() -> None:
    code = (
        "import sys\n"
        "import m365archive.report.console, m365archive.report.csvout\n"
        "import m365archive.report.jsonout, m365archive.report.markdown\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'typer', 'msgraph', 'azure'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_line_breaks_stay_inside_a_table_cell() -> None:
    change = mailbox_changes()[2]
    change.after = "on,\nfor ever"
    report = markdown.render_plan(make_plan([change]))
    assert f"| {UPN} | Litigation Hold | off → on,<br>for ever | update | Exchange Online |" in report

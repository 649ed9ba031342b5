"""The change ticket a CAB approves: target, config digest, the command that applies this plan,
waits, roles, risk, a back-out plan in reverse dependency order, sign-off; and every PowerShell
line in it is one documented cmdlet invocation."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from m365archive.engine.plan import Change, Plan
from m365archive.powershell import known_cmdlet
from m365archive.report.ticket import backout_order, is_reverse_dependency_order
from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant
from tests.clihelp import EXAMPLE, m365
from tests.pstokens import all_invocations, parse

FENCE = re.compile(r"^(`{3,})powershell\n(.*?)\n\1$", re.S | re.M)


def powershell_problems(text: str) -> list[str]:
    """Every PowerShell block: each line one cmdlet invocation, each cmdlet and parameter documented."""
    problems = []
    blocks = [m.group(2) for m in FENCE.finditer(text)]
    assert blocks, "no PowerShell block"
    for block in blocks:
        try:
            statements = parse(block)
        except ValueError as exc:
            problems.append(f"{block!r}: {exc}")
            continue
        if len(statements) != len(block.splitlines()):
            problems.append(f"{block!r}: not one statement per line")
        for statement in statements:
            for inv in all_invocations(statement):
                problems += known_cmdlet(inv.cmdlet, inv.parameters)
    return problems


def test_fresh_dry_run_is_a_change_ticket(sim: SimulatedTenant, tmp_path: Path) -> None:
    report, plan_out = tmp_path / "r.md", tmp_path / "plan.json"
    run = m365(sim.url, "setup", "--dry-run", "--report", str(report), "--plan-out", str(plan_out))
    assert run.code == ExitCode.OK, run.stderr
    assert sim.writes() == []
    text = report.read_text(encoding="utf-8")
    digest = "sha256:" + hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert f"| Target | simulated tenant at {sim.url} (not Microsoft 365) |" in text
    assert f"| Config SHA-256 | {digest} |" in text
    approved = json.loads(plan_out.read_text(encoding="utf-8"))["digest"]
    assert f"--sim {sim.url} setup --plan {plan_out} --expect-digest {approved} |" in text
    assert "up to 30 min waiting for the service" in text
    assert (
        "| waiting for Exchange Online to provision the mailbox of thirdpartydata@contoso.onmicrosoft.com | 30 min |"
        in text
    )
    assert "| make the catch-all an Exchange Administrator | Privileged Role Administrator |" in text
    assert "1 change(s) can't be undone" in text
    assert text.index("## Back-out plan") < text.index("## Findings") < text.index("## Sign-off")
    for field in ("Requested by", "Approved by (CAB)", "Ticket reference"):
        assert f"| {field} |   |" in text
    assert powershell_problems(text) == []
    # weighty facts come before the changes, each with its public source
    before_changes = text[: text.index("## Changes")]
    for fact, source in (
        ("at most 1.5 TB in all, is supported only for a growth rate up to 1 GB a day", "autoexpanding-archiving"),
        ("A user's archive mailbox is intended for just that user", "autoexpanding-archiving"),
        ("Communication compliance can't be applied", "archive-partner-third-party-data"),
        ("can't be turned off once enabled", "enable-mailbox"),
    ):
        line = next(line for line in before_changes.splitlines() if fact in line)
        assert "(source: https://learn.microsoft.com/" in line and source in line, line

    plan = Plan.from_dict(json.loads(plan_out.read_text(encoding="utf-8")))
    order = backout_order(plan.pending)
    assert is_reverse_dependency_order(order)
    ids = [c.id for c in order]
    # the hold is released before the licence goes, and the licence before the user is deleted
    upn = "thirdpartydata@contoso.onmicrosoft.com"
    assert ids.index(f"catchall_mailbox/litigation-hold/{upn}") < ids.index(f"catchall_account/license/{upn}")
    assert ids.index(f"catchall_account/license/{upn}") < ids.index(f"catchall_account/create-user/{upn}")
    backout = text[text.index("## Back-out plan") : text.index("## Findings")]
    assert "Remove-MgUser -UserId (Get-MgUser -UserId 'thirdpartydata@contoso.onmicrosoft.com').Id" in backout
    assert backout.rindex("Remove-MgUser") > backout.rindex("-LitigationHoldEnabled $false")


def test_backout_order_follows_dependencies_not_plan_order() -> None:
    def c(cid: str, deps: list[str]) -> Change:
        from m365archive.engine.plan import Action

        return Change(cid, "s", "t", cid, Action.CREATE, None, 1, depends_on=deps)

    changes = [c("b", ["a"]), c("a", []), c("c", ["b"])]
    order = backout_order(changes)
    assert [x.id for x in order] == ["c", "b", "a"]
    assert is_reverse_dependency_order(order)
    assert not is_reverse_dependency_order(list(reversed(order)))


def test_no_seats_dry_run_writes_the_report_with_the_failed_check_and_sends_nothing(tmp_path: Path) -> None:
    from m365archive.sim.server import simulated_tenant

    report = tmp_path / "r.md"
    with simulated_tenant("no-seats", time_scale=0.001) as sim:
        run = m365(sim.url, "setup", "--dry-run", "--report", str(report))
        assert run.code == ExitCode.PREREQUISITE, run.stderr
        assert sim.writes() == []
    text = report.read_text(encoding="utf-8")
    blocking = text[text.index("Blocking: a failure stops apply") : text.index("## Changes")]
    assert "| catch-all licence: no free seat" in blocking and "| **FAIL** |" in blocking

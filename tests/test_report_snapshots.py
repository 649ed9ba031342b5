"""Report snapshots (Markdown and its JSON twin) for the built-in scenarios, with volatile fields
normalised, plus semantic assertions: every PowerShell line is one documented cmdlet invocation,
and the back-out plan is in reverse dependency order.

Update after an intended change: `pytest tests/test_report_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from m365archive.result import ExitCode
from m365archive.sim.server import simulated_tenant
from tests.clihelp import EXAMPLE, m365
from tests.test_ticket import powershell_problems

TENANT = "6f1c2a4e-3b5d-4c7e-9f10-2a3b4c5d6e7f"
VOLATILE: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"http://127\.0\.0\.1:\d+"), "http://SIM"),
    (re.compile(r"sha256:[0-9a-f]{64}"), "sha256:DIGEST"),
    (re.compile(r"Plan digest \| [0-9a-f]{12}"), "Plan digest | DIGEST"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:\+00:00|Z)?"), "TIME"),
    (re.compile(r"\b(?!" + TENANT + r")[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "GUID"),
    (re.compile(r"(Tool version \| |\"tool_version\": \")[0-9][^ |\"]*"), r"\1VERSION"),
]


REPO = str(EXAMPLE.parents[1])


OTHER_VOCABULARY = re.compile(r"(?:^|[ (:,])(?:True|False|true|false|None|Active|HostedProvisioned)(?:$|[ ),;])")


def vocabulary_problems(text: str) -> list[str]:
    """Every change row's before and after in one vocabulary (on/off, "(none)"), whatever the step."""
    problems = []
    for line in text.splitlines():
        cells = line.split(" | ")
        if line.startswith("| ") and len(cells) == 5 and cells[3] in ("create", "update", "delete", "no-op"):
            for value in cells[2].split(" → "):
                if OTHER_VOCABULARY.search(value):
                    problems.append(line)
    return problems


def normalise(text: str, tmp: Path) -> str:
    text = text.replace(str(tmp), "TMP").replace(REPO, "REPO")
    for pattern, replacement in VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def purview_config(tmp: Path) -> Path:
    path = tmp / "purview.toml"
    path.write_text(
        f'procedure = "purview-connector"\n\n[tenant]\nid = "{TENANT}"\n\n[connector]\nsource = "veritas-merge1"\n'
        'partner_app_id = "3f4e5d6c-7b8a-4a1b-9c2d-1e2f3a4b5c6d"\nadd_role_group_member = true\n\n'
        '[users]\nscope = "all"\n',
        encoding="utf-8",
    )
    return path


def hybrid_config(tmp: Path) -> Path:
    path = tmp / "hybrid.toml"
    text = (EXAMPLE.parent / "hybrid.toml").read_text(encoding="utf-8")
    path.write_text(text.replace('auth = "kerberos"', 'auth = "ntlm"', 1), encoding="utf-8")
    return path


CASES: dict[str, tuple[str, Callable[[Path], Path], list[str], ExitCode]] = {
    "fresh": ("fresh", lambda tmp: EXAMPLE, ["setup", "--dry-run"], ExitCode.OK),
    "half-configured": ("half-configured", lambda tmp: EXAMPLE, ["setup", "--dry-run"], ExitCode.OK),
    "hybrid": ("hybrid", hybrid_config, ["setup", "--dry-run"], ExitCode.OK),
    # a blocking check fails: the report is still written, with the check under Blocking; exit 7
    "no-seats": ("no-seats", lambda tmp: EXAMPLE, ["setup", "--dry-run"], ExitCode.PREREQUISITE),
    "legacy-leftovers": ("legacy-leftovers", lambda tmp: EXAMPLE, ["legacy", "cleanup", "--dry-run"], ExitCode.OK),
    "purview-connector": ("fresh", purview_config, ["setup", "--dry-run"], ExitCode.OK),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.usefixtures("memory_keyring")  # the report names the password store's backend: the same one everywhere
def test_report_snapshot(
    case: str, tmp_path: Path, snapshot: SnapshotAssertion, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario, make_config, args, code = CASES[case]
    config = make_config(tmp_path)
    report, plan_out = tmp_path / "report.md", tmp_path / "plan.json"
    with simulated_tenant(scenario, time_scale=0.001) as sim:
        if scenario == "hybrid":
            monkeypatch.setenv("M365ARCHIVE_ONPREM_PASSWORD", sim.state.onprem_users["CONTOSO\\exadmin"])
        run = m365(sim.url, *args, "--report", str(report), "--plan-out", str(plan_out), config=config)
        assert run.code == code, run.stderr
        document = m365(sim.url, "-o", "json", *args, config=config)
        assert document.code == code, document.stderr
        assert sim.writes() == []
    text = report.read_text(encoding="utf-8")
    data = json.loads(document.stdout)["data"]

    assert powershell_problems(text) == []
    assert vocabulary_problems(text) == []
    for change in data["changes"]:
        op = change["operation"]
        if op and op["powershell"]:
            assert powershell_problems(f"```powershell\n{op['powershell']}\n```") == [], op["powershell"]
    depends = {c["id"]: c.get("depends_on", []) for c in data["changes"]}
    seen: set[str] = set()
    for entry in data["backout"]:  # each change is undone before anything it depended on
        assert not set(depends[entry["change_id"]]) & seen, entry["change_id"]
        seen.add(entry["change_id"])
    assert len(data["backout"]) == sum(1 for c in data["changes"] if c["action"] != "no-op")
    if code == ExitCode.PREREQUISITE:
        blocking = text[text.index("Blocking: a failure stops apply") : text.index("Advisory:")]
        assert "| **FAIL** |" in blocking
        assert json.loads(plan_out.read_text(encoding="utf-8"))["appliable"] is False
        assert any(c["blocking"] and not c["passed"] for c in data["checks"])

    assert normalise(text, tmp_path) == snapshot(name="markdown")
    twin = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False)
    assert normalise(twin, tmp_path) == snapshot(name="json")

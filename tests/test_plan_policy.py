"""What a plan may contain (tenant/plan_policy.py): every plan the steps make passes; edits that
send somewhere else, run another cmdlet or parameter, move a secret or break the graph are refused."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from m365archive.engine.plan import Plan
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from m365archive.tenant.plan_policy import CMDLETS, PlanPolicyError, validate
from tests.clihelp import EXAMPLE, m365
from tests.test_legacy import purview_config
from tests.test_purview import PARTNER, write_config
from tests.test_retention import policy_config

Doc = dict[str, Any]


def test_the_allow_list_is_a_subset_of_microsofts_cmdlet_reference() -> None:
    spec = json.loads(files("m365archive").joinpath("data/exchange-cmdlets.json").read_text(encoding="utf-8"))
    for kind, cmdlets in CMDLETS.items():
        for name, parameters in cmdlets.items():
            assert name in spec, (kind, name)
            assert parameters <= set(spec[name]["parameters"]), (kind, name, parameters - set(spec[name]["parameters"]))


def dry_run(sim: SimulatedTenant, tmp_path: Path, *args: str, config: Path = EXAMPLE) -> Doc:
    path = tmp_path / "plan.json"
    run = m365(sim.url, *args, "--dry-run", "--plan-out", str(path), config=config)
    assert run.code == 0, run.stderr
    doc: Doc = json.loads(path.read_text(encoding="utf-8"))
    return doc


@pytest.mark.parametrize(
    ("scenario", "make_config", "command"),
    [
        ("fresh", lambda tmp: policy_config(tmp), ("setup",)),
        ("fresh", lambda tmp: write_config(tmp, PARTNER), ("setup",)),
        ("half-configured", lambda tmp: EXAMPLE, ("setup",)),
        ("legacy-leftovers", lambda tmp: purview_config(tmp), ("legacy", "cleanup", "--rotate-password")),
    ],
)
def test_every_plan_the_steps_make_passes(
    scenario: str, make_config: Callable[[Path], Path], command: tuple[str, ...], tmp_path: Path
) -> None:
    with simulated_tenant(scenario, time_scale=0.001) as sim:
        doc = dry_run(sim, tmp_path, *command, config=make_config(tmp_path))
    assert [c for c in doc["changes"] if c["action"] != "no-op"]
    validate(Plan.from_dict(doc))


@pytest.fixture(scope="module")
def fresh_plan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Doc]:
    with simulated_tenant("fresh", time_scale=0.001) as sim:
        doc = dry_run(sim, tmp_path_factory.mktemp("p"), "setup")
    validate(Plan.from_dict(doc))  # the fresh plan passes (the control for every edit below)
    yield doc


def request(doc: Doc, prefix: str) -> dict[str, Any]:
    change = next(c for c in doc["changes"] if c["id"].startswith(prefix) and c.get("operation"))
    found: dict[str, Any] = change["operation"]["request"]
    return found


EDITS: dict[str, tuple[Callable[[Doc], Any], str]] = {
    "absolute URL": (
        lambda d: request(d, "catchall_account/create-user").update(path="https://graph.microsoft.com/v1.0/users"),
        "not a relative /v1.0 path",
    ),
    "foreign host": (
        lambda d: request(d, "catchall_account/create-user").update(path="//collector.example.net/users"),
        "not a relative /v1.0 path",
    ),
    "foreign host with a user name": (
        lambda d: request(d, "catchall_account/role").update(path="http://graph@collector.example.net/x"),
        "not a relative /v1.0 path",
    ),
    "dot segments": (
        lambda d: request(d, "catchall_account/role").update(path="/users/../../evil"),
        "dot segments",
    ),
    "a path the tool never sends": (
        lambda d: request(d, "catchall_account/role").update(path="/users/x/memberOf"),
        "not a request this tool makes",
    ),
    "a body property the tool never sends": (
        lambda d: request(d, "catchall_account/create-user")["body"].update(jobTitle="x"),
        "body properties ['jobTitle']",
    ),
    "a secret in another body field": (
        lambda d: request(d, "catchall_account/create-user")["body"].update(displayName="${secret:catchall-password}"),
        "a secret placeholder in 'displayName'",
    ),
    "a secret in a cmdlet parameter": (
        lambda d: request(d, "catchall_mailbox/hidden")["parameters"].update(Identity="${secret:catchall-password}"),
        "secret placeholder in a cmdlet parameter",
    ),
    "a cmdlet off the allow-list": (
        lambda d: request(d, "catchall_mailbox/hidden").update(cmdlet="Remove-Mailbox"),
        "cmdlet Remove-Mailbox is not one this tool runs",
    ),
    "a parameter off the allow-list": (
        lambda d: request(d, "catchall_mailbox/hidden")["parameters"].update(ForwardingSmtpAddress="x@example.net"),
        "['ForwardingSmtpAddress'] are not on the allow-list",
    ),
    "an unknown operation kind": (
        lambda d: next(c for c in d["changes"] if c.get("operation"))["operation"].update(kind="http"),
        "unknown operation kind",
    ),
    "a dependency cycle": (
        lambda d: next(c for c in d["changes"] if c["id"].startswith("catchall_account/create-user")).update(
            depends_on=[next(c["id"] for c in d["changes"] if c["id"].startswith("catchall_account/role"))]
        ),
        "cycle",
    ),
    "a dependency on nothing": (
        lambda d: d["changes"][0].update(depends_on=["nowhere"]),
        "which is not in the plan",
    ),
    "a reference to nothing": (
        lambda d: request(d, "catchall_account/role")["body"].update(principalId="${ref:nowhere#id}"),
        "which no change in the plan provides",
    ),
}


@pytest.mark.parametrize("name", list(EDITS))
def test_an_edit_the_tool_never_makes_is_refused(name: str, fresh_plan: Doc) -> None:
    doc = json.loads(json.dumps(fresh_plan))
    tamper, message = EDITS[name]
    tamper(doc)
    with pytest.raises(PlanPolicyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate(Plan.from_dict(doc))

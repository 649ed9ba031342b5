"""The simulator's parameter binder refuses what the cmdlet reference says, and only that.

Parameters are picked from exchange-cmdlets.json programmatically, and a copy of the spec is
edited to show that the verdicts follow the data rather than a hand-written list.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from m365archive.sim import cmdlets
from m365archive.sim.cmdlets import CmdletRefusal, Spec, bind, bind_parameters

RAW: dict[str, Any] = json.loads(cmdlets.SPEC_PATH.read_text(encoding="utf-8"))


def refusal(cmdlet: str, params: dict[str, Any], side: str, spec: Spec | None = None) -> CmdletRefusal:
    with pytest.raises(CmdletRefusal) as info:
        bind(cmdlet, params, side, spec=spec)
    return info.value


def edited(tmp_path: Path, change: Any) -> Spec:
    raw = json.loads(cmdlets.SPEC_PATH.read_text(encoding="utf-8"))
    change(raw)
    path = tmp_path / "exchange-cmdlets.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return Spec.load(path)


def test_the_packaged_spec_is_the_shared_one() -> None:
    shared = Path(__file__).resolve().parents[2] / "shared" / "specs" / "exchange-cmdlets.json"
    if not shared.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{shared} is missing: CI must have shared/specs beside the checkout")
        pytest.skip("shared specs not present beside the checkout")
    assert json.loads(shared.read_text(encoding="utf-8")) == RAW


def test_every_on_premises_only_parameter_is_refused_online() -> None:
    """All parameters the spec marks on-premises only, for every Exchange Online cmdlet."""
    checked = 0
    for name, entry in RAW.items():
        if not entry["exchange_online"]:
            continue
        for pname, p in entry["parameters"].items():
            if p["on_premises"] and not p["exchange_online"]:
                err = refusal(name, {pname: "x"}, "exchange-online")
                assert err.error_id == "NamedParameterNotFound", (name, pname)
                assert err.message == f"A parameter cannot be found that matches parameter name '{pname}'."
                checked += 1
    assert checked > 100  # DomainController and friends across the covered cmdlets


def test_domain_controller_is_refused_online_and_bound_on_premises() -> None:
    err = refusal("Set-Mailbox", {"Identity": "a@b", "DomainController": "dc1.contoso.com"}, "exchange-online")
    assert err.category == "ParameterBindingException"
    assert bind("Set-Mailbox", {"Identity": "a@b", "DomainController": "dc1.contoso.com"}, "on-premises") == "Identity"


def test_unknown_parameter_and_unknown_cmdlet() -> None:
    err = refusal("Set-Mailbox", {"Identity": "a@b", "LitigationHold": True}, "exchange-online")
    assert err.message == "A parameter cannot be found that matches parameter name 'LitigationHold'."
    err = refusal("Set-Mailboxx", {}, "exchange-online")
    assert err.category == "CommandNotFoundException"
    assert err.message.startswith("The term 'Set-Mailboxx' is not recognized as a name of a cmdlet")


def test_cmdlet_availability_per_side_follows_the_spec() -> None:
    for name, entry in RAW.items():
        online = entry["exchange_online"]
        scc = entry["security_and_compliance"]
        for side, available in (("exchange-online", online), ("compliance", scc)):
            if available:
                continue
            assert refusal(name, {}, side).category == "CommandNotFoundException", (name, side)


def test_two_parameter_sets_in_one_call() -> None:
    """Enable-Mailbox -Archive -AutoExpandingArchive: each switch is in its own set."""
    sets = RAW["Enable-Mailbox"]["parameters"]
    assert sets["Archive"]["sets"] == ["Archive"] and sets["AutoExpandingArchive"]["sets"] == ["AutoExpandingArchive"]
    err = refusal(
        "Enable-Mailbox", {"Identity": "a@b", "Archive": True, "AutoExpandingArchive": True}, "exchange-online"
    )
    assert err.error_id == "AmbiguousParameterSet"
    assert err.message == "Parameter set cannot be resolved using the specified named parameters."
    assert bind("Enable-Mailbox", {"Identity": "a@b", "Archive": True}, "exchange-online") == "Archive"
    assert bind("Enable-Mailbox", {"Identity": "a@b", "AutoExpandingArchive": True}, "exchange-online") == (
        "AutoExpandingArchive"
    )


def test_ambiguous_without_a_default_set_like_the_documented_issue() -> None:
    """New-RetentionCompliancePolicy -Name alone: Default and TeamLocation both fit (docs issue #3838)."""
    assert refusal("New-RetentionCompliancePolicy", {"Name": "p"}, "compliance").error_id == "AmbiguousParameterSet"
    assert bind("New-RetentionCompliancePolicy", {"Name": "p", "ExchangeLocation": ["a@b"]}, "compliance") == "Default"


def test_invalid_enum_lists_the_spec_values() -> None:
    values = RAW["Add-MailboxPermission"]["parameters"]["AccessRights"]["valid_values"]
    err = refusal(
        "Add-MailboxPermission", {"Identity": "a@b", "User": "c@d", "AccessRights": ["SendAs"]}, "exchange-online"
    )
    assert err.category == "ParameterBindingValidationException"
    assert err.message == (
        "Cannot validate argument on parameter 'AccessRights'. The argument \"SendAs\" does not belong to the set "
        f'"{",".join(values)}" specified by the ValidateSet attribute. Supply an argument that is in the set and '
        "then try the command again."
    )
    # Case-insensitive, normalized to the spec's casing.
    binding = bind_parameters(
        "add-mailboxpermission", {"identity": "a@b", "USER": "c@d", "accessrights": "fullaccess"}, "exchange-online"
    )
    assert binding.cmdlet == "Add-MailboxPermission"
    assert binding.parameters == {"Identity": "a@b", "User": "c@d", "AccessRights": ["FullAccess"]}


def test_prose_valid_values_are_not_enforced() -> None:
    # AutoMapping's valid_values are "$true: ..." sentences; ExchangeLocation's describe what a location can be.
    assert RAW["Add-MailboxPermission"]["parameters"]["AutoMapping"]["valid_values"][0].startswith("$true")
    bind(
        "Add-MailboxPermission",
        {"Identity": "a", "User": "b", "AccessRights": "FullAccess", "AutoMapping": False},
        "exchange-online",
    )
    bind("New-RetentionCompliancePolicy", {"Name": "p", "ExchangeLocation": ["x@y"]}, "compliance")


def test_every_identifier_enum_in_the_spec_is_enforced() -> None:
    spec = cmdlets.default_spec()
    name_like = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
    enforced = 0
    for name, entry in RAW.items():
        c = spec.cmdlet(name)
        assert c is not None
        for pname, p in entry["parameters"].items():
            values = p["valid_values"]
            if values and all(name_like.match(v) for v in values) and p["type"] not in ("Boolean", "SwitchParameter"):
                assert c.parameters[pname.lower()].valid_values == tuple(values), (name, pname)
                enforced += 1
    assert enforced >= 5


@pytest.mark.parametrize(
    ("cmdlet", "params", "message"),
    [
        (
            "Set-Mailbox",
            {"Identity": "a", "LitigationHoldEnabled": "yes"},
            'Cannot convert value "yes" to type "System.Boolean"',
        ),
        ("Set-Mailbox", {"Identity": "a", "LitigationHoldDuration": "forever"}, "Unlimited"),
        ("Enable-Mailbox", {"Identity": "a", "Archive": "yes"}, "SwitchParameter"),
        ("Get-Mailbox", {"ResultSize": "lots"}, "parameter 'ResultSize'"),
        ("Set-Mailbox", {"Identity": ["a", "b"]}, "Cannot convert 'System.Object[]'"),
    ],
)
def test_wrong_types_are_refused(cmdlet: str, params: dict[str, Any], message: str) -> None:
    err = refusal(cmdlet, params, "exchange-online")
    assert message in err.message
    assert err.category.startswith("ParameterBinding")


def test_types_that_bind() -> None:
    p = bind_parameters(
        "Set-Mailbox",
        {
            "Identity": "a",
            "LitigationHoldEnabled": 1,
            "LitigationHoldDuration": "unlimited",
            "RetainDeletedItemsFor": 30,
            "AuditOwner": {"Add": ["MailboxLogin"], "Remove": "Update"},
        },
        "exchange-online",
    ).parameters
    assert p["LitigationHoldEnabled"] is True and p["LitigationHoldDuration"] == "Unlimited"
    assert p["RetainDeletedItemsFor"] == "30.00:00:00"
    assert p["AuditOwner"] == {"Add": ["MailboxLogin"], "Remove": ["Update"]}
    assert bind_parameters("Get-Mailbox", {"ResultSize": "2500"}, "exchange-online").parameters["ResultSize"] == 2500


def test_missing_mandatory_parameter() -> None:
    required = RAW["Add-RoleGroupMember"]["parameter_sets"]["__AllParameterSets"]["required"]
    assert required == ["Identity", "Member"]
    err = refusal("Add-RoleGroupMember", {"Identity": "ComplianceAdministrator"}, "compliance")
    assert err.error_id == "MissingMandatoryParameter"
    assert err.message == "Cannot process command because of one or more missing mandatory parameters: Member."


def test_editing_the_spec_changes_the_verdict(tmp_path: Path) -> None:
    # Make DomainController an Exchange Online parameter of Set-Mailbox: now it binds online.
    def allow_dc(raw: dict[str, Any]) -> None:
        raw["Set-Mailbox"]["parameters"]["DomainController"]["exchange_online"] = True

    spec = edited(tmp_path, allow_dc)
    assert bind("Set-Mailbox", {"Identity": "a", "DomainController": "dc"}, "exchange-online", spec=spec)

    # Put -Archive and -AutoExpandingArchive in one set: the combined call binds.
    def merge_sets(raw: dict[str, Any]) -> None:
        raw["Enable-Mailbox"]["parameters"]["AutoExpandingArchive"]["sets"] = ["Archive"]

    spec = edited(tmp_path, merge_sets)
    params = {"Identity": "a", "Archive": True, "AutoExpandingArchive": True}
    assert bind("Enable-Mailbox", params, "exchange-online", spec=spec) == "Archive"

    # Remove FullAccess from the AccessRights set: FullAccess is now refused.
    def drop_full(raw: dict[str, Any]) -> None:
        values = raw["Add-MailboxPermission"]["parameters"]["AccessRights"]["valid_values"]
        values.remove("FullAccess")

    spec = edited(tmp_path, drop_full)
    params = {"Identity": "a", "User": "b", "AccessRights": ["FullAccess"]}
    assert (
        refusal("Add-MailboxPermission", params, "exchange-online", spec).error_id == "ParameterArgumentValidationError"
    )
    bind("Add-MailboxPermission", params, "exchange-online")  # the real spec still accepts it

    # Make Add-RoleGroupMember's Member optional: the call without it binds.
    def member_optional(raw: dict[str, Any]) -> None:
        raw["Add-RoleGroupMember"]["parameter_sets"]["__AllParameterSets"]["required"] = ["Identity"]

    spec = edited(tmp_path, member_optional)
    assert bind("Add-RoleGroupMember", {"Identity": "g"}, "compliance", spec=spec)

    # Withdraw Get-Mailbox from Exchange Online.
    def withdraw(raw: dict[str, Any]) -> None:
        raw["Get-Mailbox"]["exchange_online"] = False

    spec = edited(tmp_path, withdraw)
    assert refusal("Get-Mailbox", {}, "exchange-online", spec).category == "CommandNotFoundException"


def test_common_parameters_and_repeated_names() -> None:
    assert (
        bind("Get-Mailbox", {"Identity": "a", "ErrorAction": "Stop", "Verbose": True}, "exchange-online") == "Identity"
    )
    err = refusal("Get-Mailbox", {"Identity": "a", "identity": "b"}, "exchange-online")
    assert err.error_id == "ParameterAlreadyBound"

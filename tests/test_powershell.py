"""Every PowerShell line the tool prints is one cmdlet invocation whose values stay literals.

The property test throws arbitrary strings (quotes of every kind, backticks, `$`, `;`, `|`, braces,
newlines) at m365archive.powershell and reads the result back with tests/pstokens.py, a
reference tokenizer written from PowerShell's quoting rules.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from m365archive.powershell import (
    SINGLE_QUOTES,
    command,
    known_cmdlet,
    literal,
    lookup,
    odata_filter,
    reference_page,
    user_id,
    variable,
)
from m365archive.tenant.exchange import Cmdlet
from tests.pstokens import PsSyntaxError, all_invocations, parse, parse_one

# Strings rich in what breaks naive quoting, plus anything at all.
NASTY = st.text(
    alphabet=st.sampled_from(list(SINGLE_QUOTES + '"\u201c\u201d`$;|&(){}@#,-=\n\r\t x\u2013')), max_size=30
)
ANY = st.one_of(NASTY, st.text(max_size=40))


@settings(max_examples=300, deadline=None)
@given(a=ANY, b=ANY)
def test_any_string_stays_one_literal_and_the_cmdlet_is_unchanged(a: str, b: str) -> None:
    line = command("Set-Mailbox", {"Identity": a, "DisplayName": b, "AuditOwner": [a, b], "AuditEnabled": True})
    inv = parse_one(line)
    assert inv.cmdlet == "Set-Mailbox"
    assert inv.parameters == ["Identity", "DisplayName", "AuditOwner", "AuditEnabled"]
    assert inv.strings == [a, b, a, b]


@settings(max_examples=200, deadline=None)
@given(upn=ANY, name=ANY, app=ANY)
@example(upn="", name="x\n", app="")  # `$` matched before a final newline: the key was printed bare
def test_lookups_hashtables_and_filters_keep_values_literal(upn: str, name: str, app: str) -> None:
    line = command(
        "New-MgUser",
        {"DisplayName": name, "PasswordProfile": {"Password": variable("password"), name or "k": upn}},
    )
    inv = parse_one(line)
    assert (inv.cmdlet, inv.parameters) == ("New-MgUser", ["DisplayName", "PasswordProfile"])
    assert name in inv.strings and upn in inv.strings
    removal = command(
        "Remove-MgRoleManagementDirectoryRoleAssignment",
        {
            "UnifiedRoleAssignmentId": lookup(
                "Get-MgRoleManagementDirectoryRoleAssignment",
                {"Filter": odata_filter("principalId eq '{0}' and roleDefinitionId eq '{1}'", user_id(upn, None), app)},
            )
        },
    )
    inv = parse_one(removal)
    assert inv.cmdlet == "Remove-MgRoleManagementDirectoryRoleAssignment"
    assert inv.parameters == ["UnifiedRoleAssignmentId"]
    assert [i.cmdlet for i in all_invocations(inv)] == [
        "Remove-MgRoleManagementDirectoryRoleAssignment",
        "Get-MgRoleManagementDirectoryRoleAssignment",
        "Get-MgUser",
    ]
    assert upn in inv.strings and app in inv.strings


@given(value=ANY)
def test_literal_doubles_every_single_quote_character(value: str) -> None:
    text = literal(value)
    inner = text[1:-1]
    assert text[0] == "'" and text[-1] == "'"
    # outside doubled pairs, no quote character remains that could end the literal
    i = 0
    while i < len(inner):
        if inner[i] in SINGLE_QUOTES:
            assert inner[i + 1] == inner[i]
            i += 2
        else:
            i += 1


@pytest.mark.parametrize(
    "line",
    [
        "Set-Mailbox -Identity x",  # a bare value
        "Set-Mailbox -Identity 'x'; Remove-Mailbox -Identity 'y'",
        "Set-Mailbox -Identity 'x' | Remove-Mailbox",
        'Set-Mailbox -Identity "x$(Remove-Mailbox)"',
        "Set-Mailbox -Identity 'x'y",
        "Set-Mailbox -Identity 'x\u2019; Remove-Mailbox",  # a curly quote ends the literal
        "Set-Mailbox -Identity 'x' # comment",
    ],
)
def test_the_reference_tokenizer_refuses_what_could_run_something_else(line: str) -> None:
    with pytest.raises(PsSyntaxError):
        parse_one(line)


def test_the_old_half_quoting_would_have_failed() -> None:
    name = "O\u2019Brien; Remove-Mailbox"
    naive = "Set-Mailbox -Identity '" + name.replace("'", "''") + "'"  # doubles only the ASCII quote
    with pytest.raises(PsSyntaxError):
        parse_one(naive)
    assert parse_one(command("Set-Mailbox", {"Identity": name})).strings == [name]


def test_switches_and_booleans_follow_the_cmdlet_reference() -> None:
    assert Cmdlet("Enable-Mailbox", {"Identity": "a", "Archive": True}).powershell() == (
        "Enable-Mailbox -Identity 'a' -Archive"
    )
    assert command("Set-Mailbox", {"Identity": "a", "LitigationHoldEnabled": False}) == (
        "Set-Mailbox -Identity 'a' -LitigationHoldEnabled $false"
    )
    assert command("Update-MgUser", {"UserId": "1", "AccountEnabled": False}) == (
        "Update-MgUser -UserId '1' -AccountEnabled:$false"
    )
    assert parse("Update-MgUser -UserId '1' -AccountEnabled:$false")[0].parameters == ["UserId", "AccountEnabled"]


def test_known_cmdlets_have_a_reference_page() -> None:
    assert known_cmdlet("Set-Mailbox", ["Identity", "DefaultAuditSet"]) == []
    assert known_cmdlet("New-MgUser", ["AccountEnabled", "PasswordProfile"]) == []
    assert known_cmdlet("Set-Mailbox", ["AuditOwnr"]) == ["Set-Mailbox has no parameter -AuditOwnr"]
    assert known_cmdlet("Invoke-Nothing", []) != []
    for cmdlet in ("Set-Mailbox", "New-MgUser", "Disable-Mailbox", "Set-AdminAuditLogConfig"):
        assert (reference_page(cmdlet) or "").startswith("https://learn.microsoft.com/powershell/module/")

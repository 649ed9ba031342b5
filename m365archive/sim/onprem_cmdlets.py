"""The cmdlets of the simulated on-premises Exchange server: Get/Enable/Set-RemoteMailbox.

Runs one PSRP pipeline (psrpcore ServerPipeline) against the tenant state, as Exchange's
NoLanguage remote PowerShell endpoint would: scripts are refused, every call is validated by
the spec binder (sim/cmdlets.py, side "on-premises"), "couldn't be found" is a
non-terminating error on the error stream, binding failures fail the pipeline.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from psrpcore.types import (
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    NETException,
    PSDateTime,
    PSInvocationState,
    PSList,
    PSObject,
    add_note_property,
)

from m365archive.sim.state import RemoteMailbox, TenantState, new_id

SIDE = "on-premises"
ZERO_GUID = "00000000-0000-0000-0000-000000000000"
DEFAULT_RESULT_SIZE = 1000
_TASK_NAMESPACE = "Microsoft.Exchange.Management.RecipientTasks"

SCRIPTS_NOT_ALLOWED = (
    "The syntax is not supported by this runspace. This can occur if the runspace is in no-language mode."
)
RESULT_SIZE_WARNING = (
    "By default only the first 1000 items are returned. Use the ResultSize parameter to specify the "
    'number of items returned. To return all items, specify "-ResultSize Unlimited". Be aware that, '
    "depending on the actual number of items, returning all items can take a long time and consume a "
    "large amount of memory. Also, we don't recommend storing the results in a variable. Instead, "
    "pipe the results to another task or script to perform batch changes."
)

REMOTE_MAILBOX_TYPES = [
    "Deserialized.Microsoft.Exchange.Data.Directory.Management.RemoteMailbox",
    "Deserialized.Microsoft.Exchange.Data.Directory.Management.MailEnabledOrgPerson",
    "Deserialized.Microsoft.Exchange.Data.Directory.Management.MailEnabledRecipient",
    "Deserialized.Microsoft.Exchange.Data.Directory.ADPresentationObject",
    "Deserialized.Microsoft.Exchange.Data.ConfigurableObject",
    "Deserialized.System.Object",
]
PROXY_COLLECTION_TYPES = [
    "Deserialized.Microsoft.Exchange.Data.ProxyAddressCollection",
    "Deserialized.Microsoft.Exchange.Data.ProxyAddressBaseCollection`1"
    "[[Microsoft.Exchange.Data.ProxyAddress, Microsoft.Exchange.Data, Version=15.0.0.0, Culture=neutral, "
    "PublicKeyToken=31bf3856ad364e35]]",
    "Deserialized.Microsoft.Exchange.Data.MultiValuedProperty`1[[Microsoft.Exchange.Data.ProxyAddress, "
    "Microsoft.Exchange.Data, Version=15.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35]]",
    "Deserialized.Microsoft.Exchange.Data.MultiValuedPropertyBase",
    "Deserialized.System.Object",
]
STRING_MVP_TYPES = [
    "Deserialized.Microsoft.Exchange.Data.MultiValuedProperty`1[[System.String, mscorlib, Version=4.0.0.0, "
    "Culture=neutral, PublicKeyToken=b77a5c561934e089]]",
    "Deserialized.Microsoft.Exchange.Data.MultiValuedPropertyBase",
    "Deserialized.System.Object",
]


class PipelineFailure(Exception):
    """A terminating error: the pipeline ends in state Failed with this error record."""

    def __init__(self, record: ErrorRecord) -> None:
        super().__init__(str(record))
        self.record = record


def error_record(
    message: str,
    *,
    exception_type: str,
    category: ErrorCategory,
    reason: str,
    error_id: str,
    activity: str = "",
    target_name: str = "",
    target_type: str = "",
    target_object: Any = None,
) -> ErrorRecord:
    exc = NETException(Message=message, HResult=-2146233087)
    exc.PSObject.type_names = [exception_type, "System.Exception", "System.Object"]
    return ErrorRecord(
        Exception=exc,
        CategoryInfo=ErrorCategoryInfo(
            Category=category,
            Activity=activity,
            Reason=reason,
            TargetName=target_name,
            TargetType=target_type,
        ),
        TargetObject=target_object,
        FullyQualifiedErrorId=error_id,
    )


def _write(pipeline: Any, record: ErrorRecord) -> None:
    pipeline.write_error(
        record.Exception,
        record.CategoryInfo,
        record.TargetObject,
        record.FullyQualifiedErrorId,
    )


def run_pipeline(state: TenantState, pipeline: Any, metadata: Any, machine: str) -> list[tuple[str, dict[str, Any]]]:
    """Run a CreatePipeline's commands; returns each cmdlet's name and parameters (request log)."""
    names: list[tuple[str, dict[str, Any]]] = []
    pipeline.start()
    try:
        previous: list[RemoteMailbox] | None = None
        for command in metadata.commands:
            if command.is_script:
                raise PipelineFailure(
                    error_record(
                        SCRIPTS_NOT_ALLOWED,
                        exception_type="System.Management.Automation.ParseException",
                        category=ErrorCategory.ParserError,
                        reason="ParseException",
                        error_id="ScriptsNotAllowed",
                    )
                )
            name = str(command.command_text)
            params: dict[str, Any] = {}
            positional: list[Any] = []
            for pname, value in command.parameters:
                if pname is None:
                    positional.append(_plain(value))
                else:
                    params[str(pname)] = _plain(value)
            names.append((name, params))
            if positional:
                if "identity" in {k.lstrip("-").lower() for k in params} or len(positional) > 1:
                    raise PipelineFailure(
                        _binding_error(
                            name,
                            f"A positional parameter cannot be found that accepts argument '{positional[-1]}'.",
                            "PositionalParameterNotFound",
                        )
                    )
                params["Identity"] = positional[0]
            output = _run_cmdlet(state, pipeline, name, params, previous, machine)
            previous = output if not command.end_of_statement else None
            if command.end_of_statement:
                for rm in output:
                    pipeline.write_output(remote_mailbox_object(state, rm, machine))
    except PipelineFailure as failure:
        pipeline._change_state(PSInvocationState.Failed, failure.record)
        return names
    pipeline.complete()
    return names


def _binding_error(
    cmdlet: str, message: str, error_id: str, category: str = "ParameterBindingException"
) -> ErrorRecord:
    if category == "CommandNotFoundException":
        return error_record(
            message,
            exception_type="System.Management.Automation.CommandNotFoundException",
            category=ErrorCategory.ObjectNotFound,
            reason="CommandNotFoundException",
            error_id=error_id,
            target_name=cmdlet,
            target_type="String",
            target_object=cmdlet,
        )
    return error_record(
        message,
        exception_type=f"System.Management.Automation.{category}",
        category=ErrorCategory.InvalidArgument,
        reason=category,
        error_id=f"{error_id},{cmdlet}",
        activity=cmdlet,
    )


def _run_cmdlet(
    state: TenantState,
    pipeline: Any,
    name: str,
    params: dict[str, Any],
    piped: list[RemoteMailbox] | None,
    machine: str,
) -> list[RemoteMailbox]:
    from m365archive.sim.cmdlets import CmdletRefusal, bind_parameters

    try:
        binding = bind_parameters(name, params, SIDE)
    except CmdletRefusal as refusal:
        raise PipelineFailure(_binding_error(name, refusal.message, refusal.error_id, refusal.category)) from None
    cmdlet = binding.cmdlet
    bound = binding.parameters
    handler = _HANDLERS.get(cmdlet.lower())
    if handler is None:
        # The spec knows it, the simulator doesn't implement it: as if the admin's role lacked it.
        raise PipelineFailure(
            _binding_error(
                cmdlet,
                f"The term '{cmdlet}' is not recognized as a name of a cmdlet, function, script file, "
                "or executable program.",
                "CommandNotFoundException",
                "CommandNotFoundException",
            )
        )
    if piped is not None and "Identity" not in bound:
        out: list[RemoteMailbox] = []
        for rm in piped:
            out.extend(handler(state, pipeline, cmdlet, {**bound, "Identity": rm.identity}, machine))
        return out
    return handler(state, pipeline, cmdlet, bound, machine)


# -- cmdlets ------------------------------------------------------------------------------------


def _not_found(state: TenantState, pipeline: Any, cmdlet: str, identity: str) -> None:
    dc = f"DC01.{state.domain.split('.')[0]}.local"
    message = f"The operation couldn't be performed because object '{identity}' couldn't be found on '{dc}'."
    _write(
        pipeline,
        error_record(
            message,
            exception_type="Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
            category=ErrorCategory.NotSpecified,
            reason="ManagementObjectNotFoundException",
            error_id=f"{_error_hex(cmdlet)},{_TASK_NAMESPACE}.{cmdlet.replace('-', '')}",
            activity=cmdlet,
            target_name=identity,
            target_type="RemoteMailbox",
            target_object=identity,
        ),
    )


def _error_hex(cmdlet: str) -> str:
    return f"{uuid.uuid5(uuid.NAMESPACE_DNS, cmdlet).int & 0xFFFFFFFF:08X}"


def find_remote_mailbox(state: TenantState, identity: str) -> RemoteMailbox | None:
    """Resolve -Identity: UPN, alias, primary SMTP, name, DOMAIN\\alias, GUID or distinguished identity."""
    key = str(identity).strip().lower()
    if "\\" in key:
        key = key.split("\\", 1)[1]
    for rm in state.remote_mailboxes.values():
        user = state.users.get(rm.user_id)
        names = {rm.identity.lower(), rm.alias.lower(), rm.user_id.lower()}
        if user:
            names.update({user.user_principal_name.lower(), user.display_name.lower()})
            if user.mail:
                names.add(user.mail.lower())
            names.add(_identity(state, rm).lower())
        mbx = state.mailboxes.get(rm.user_id)
        if mbx:
            names.add(mbx.guid.lower())
        if key in names:
            return rm
    return None


def _get(state: TenantState, pipeline: Any, cmdlet: str, bound: dict[str, Any], machine: str) -> list[RemoteMailbox]:
    identity = bound.get("Identity")
    if identity is not None:
        rm = find_remote_mailbox(state, str(identity))
        if rm is None:
            _not_found(state, pipeline, cmdlet, str(identity))
            return []
        found = [rm]
    else:
        found = sorted(state.remote_mailboxes.values(), key=lambda r: r.identity.lower())
    if bound.get("Archive") is True:
        found = [rm for rm in found if rm.archive_state != "None"]
    size = bound.get("ResultSize")
    if identity is None:
        limit = None if str(size).lower() == "unlimited" else int(size) if size is not None else DEFAULT_RESULT_SIZE
        if limit is not None and len(found) > limit:
            found = found[:limit]
            if size is None:
                pipeline.write_warning(RESULT_SIZE_WARNING)
    return found


def _enable_refused(pipeline: Any, cmdlet: str, identity: str, message: str) -> None:
    """Enable-RemoteMailbox's RecipientTaskException, as a non-terminating error."""
    _write(
        pipeline,
        error_record(
            message,
            exception_type="Microsoft.Exchange.Configuration.Tasks.RecipientTaskException",
            category=ErrorCategory.InvalidOperation,
            reason="RecipientTaskException",
            error_id=f"{_error_hex(cmdlet)},{_TASK_NAMESPACE}.EnableRemoteMailbox",
            activity=cmdlet,
            target_name=identity,
            target_type="RemoteMailbox",
            target_object=identity,
        ),
    )


def _enable(state: TenantState, pipeline: Any, cmdlet: str, bound: dict[str, Any], machine: str) -> list[RemoteMailbox]:
    identity = str(bound["Identity"])
    rm = find_remote_mailbox(state, identity)
    if rm is None:
        _not_found(state, pipeline, cmdlet, identity)
        return []
    if bound.get("Archive") is not True:
        # The Default/Room/Equipment/Shared sets mail-enable a user: this one already is.
        _enable_refused(pipeline, cmdlet, identity, f"The user '{rm.identity}' is already mail-enabled.")
        return []
    if rm.archive_state != "None":
        # Best guess at the text (exchange-errors.json: exact wording not found in public sources).
        message = f"The remote mailbox '{_identity(state, rm)}' already has an archive."
        _enable_refused(pipeline, cmdlet, identity, message)
        return []
    user = state.users.get(rm.user_id)
    display = user.display_name if user else rm.alias
    rm.archive_state = "HostedProvisioned"
    rm.archive_guid = new_id()
    rm.archive_name = _single(bound.get("ArchiveName")) or f"In-Place Archive - {display}"
    rm.pending_sync_at = state.clock.elapsed() + state.knobs.dir_sync_delay
    for key in ("Alias", "DisplayName"):
        if key in bound:
            rm.settings[key] = bound[key]
    return [rm]


_SETTABLE = {"ArchiveName", "HiddenFromAddressListsEnabled", "Alias", "DisplayName", "RemoteRoutingAddress"}


def _set(state: TenantState, pipeline: Any, cmdlet: str, bound: dict[str, Any], machine: str) -> list[RemoteMailbox]:
    identity = str(bound["Identity"])
    rm = find_remote_mailbox(state, identity)
    if rm is None:
        _not_found(state, pipeline, cmdlet, identity)
        return []
    for key, value in bound.items():
        if key in ("Identity", "Confirm", "WhatIf", "DomainController", "Force"):
            continue
        if key == "ArchiveName":
            rm.archive_name = _single(value)
        elif key == "HiddenFromAddressListsEnabled":
            rm.hidden_from_address_lists = bool(value)
        elif key == "Alias":
            rm.alias = str(value)
        elif key == "RemoteRoutingAddress":
            rm.remote_routing_address = str(value)
        else:
            rm.settings[key] = value
    if rm.archive_state != "None" and "ArchiveName" in bound:
        rm.pending_sync_at = state.clock.elapsed() + state.knobs.dir_sync_delay
    return []  # Set- writes nothing to the pipeline


# The on-premises role groups and the management roles each is assigned (Exchange Server's built-in role groups;
# only the roles m365archive asks about). Enable-RemoteMailbox is in the Mail Recipients role.
ONPREM_ROLE_GROUP_ROLES: dict[str, tuple[str, ...]] = {
    "Organization Management": (
        "Mail Recipients",
        "Mail Recipient Creation",
        "Role Management",
        "View-Only Recipients",
    ),
    "Recipient Management": ("Mail Recipients", "Mail Recipient Creation", "View-Only Recipients"),
    "View-Only Organization Management": ("View-Only Recipients", "View-Only Configuration"),
}
ASSIGNMENT_TYPES = [
    "Deserialized.Microsoft.Exchange.Management.RbacTasks.ExchangeRoleAssignmentPresentation",
    "Deserialized.Microsoft.Exchange.Data.Directory.ADPresentationObject",
    "Deserialized.Microsoft.Exchange.Data.ConfigurableObject",
    "Deserialized.System.Object",
]


def _role_assignments(
    state: TenantState, pipeline: Any, cmdlet: str, bound: dict[str, Any], machine: str
) -> list[RemoteMailbox]:
    """Get-ManagementRoleAssignment [-Role R] [-GetEffectiveUsers]: the role assignments of the role groups the
    on-premises accounts belong to (knob onprem_role_groups); with -GetEffectiveUsers one object per user who
    effectively holds the assignment, named in EffectiveUserName. A read: it changes nothing."""
    wanted = str(bound.get("Role") or "").lower()
    users = [account.rpartition("\\")[2] for account in state.onprem_users]
    org = state.domain.split(".")[0]
    for group in state.knobs.onprem_role_groups:
        for role in ONPREM_ROLE_GROUP_ROLES.get(group, ()):
            if wanted and role.lower() != wanted:
                continue
            for user in users if bound.get("GetEffectiveUsers") else [""]:
                obj = PSObject()
                obj.PSObject.type_names = list(ASSIGNMENT_TYPES)
                name = f"{role}-{group}"
                obj.PSObject.to_string = name
                for key, value in (
                    ("Name", name),
                    ("Identity", name),
                    ("Role", role),
                    ("RoleAssigneeName", group),
                    ("RoleAssigneeType", "RoleGroup"),
                    ("AssignmentMethod", "RoleGroup" if user else "Direct"),
                    ("EffectiveUserName", user or "All Group Members"),
                    ("RoleAssignee", f"{org}.local/Microsoft Exchange Security Groups/{group}"),
                    ("Enabled", True),
                    ("RoleAssignmentDelegationType", "Regular"),
                    ("RecipientWriteScope", "Organization"),
                    ("ConfigWriteScope", "OrganizationConfig"),
                    ("IsValid", True),
                ):
                    add_note_property(obj, key, value)
                pipeline.write_output(obj)
    return []


_HANDLERS = {
    "get-managementroleassignment": _role_assignments,
    "get-remotemailbox": _get,
    "enable-remotemailbox": _enable,
    "set-remotemailbox": _set,
}


# -- output objects -------------------------------------------------------------------------------


def _identity(state: TenantState, rm: RemoteMailbox) -> str:
    user = state.users.get(rm.user_id)
    name = user.display_name if user else rm.alias
    return f"{state.domain.split('.')[0]}.local/Users/{name}"


def remote_mailbox_object(state: TenantState, rm: RemoteMailbox, machine: str) -> PSObject:
    """Get-RemoteMailbox's object as Exchange serializes it (Deserialized.* type names)."""
    user = state.users.get(rm.user_id)
    mbx = state.mailboxes.get(rm.user_id)
    display = str(rm.settings.get("DisplayName") or (user.display_name if user else rm.alias))
    upn = user.user_principal_name if user else rm.identity
    smtp = (user.mail if user and user.mail else upn) or upn
    obj = PSObject()
    obj.PSObject.type_names = list(REMOTE_MAILBOX_TYPES)
    obj.PSObject.to_string = display
    proxies = PSList([f"SMTP:{smtp}", f"smtp:{rm.remote_routing_address}"])
    proxies.PSObject.type_names = list(PROXY_COLLECTION_TYPES)
    archive_names = PSList([rm.archive_name] if rm.archive_name else [])
    archive_names.PSObject.type_names = list(STRING_MVP_TYPES)
    props: list[tuple[str, Any]] = [
        ("Identity", _identity(state, rm)),
        ("Name", display),
        ("DisplayName", display),
        ("Alias", rm.alias),
        ("UserPrincipalName", upn),
        ("PrimarySmtpAddress", smtp),
        ("RemoteRoutingAddress", f"SMTP:{rm.remote_routing_address}"),
        ("EmailAddresses", proxies),
        ("RecipientType", "MailUser"),
        ("RecipientTypeDetails", "RemoteUserMailbox"),
        ("RemoteRecipientType", "ProvisionArchive, Migrated" if rm.archive_state != "None" else "Migrated"),
        ("ArchiveState", rm.archive_state),
        ("ArchiveStatus", "None"),
        ("ArchiveName", archive_names),
        ("ArchiveGuid", rm.archive_guid),
        ("ExchangeGuid", mbx.guid if mbx else ZERO_GUID),
        ("Guid", rm.user_id),
        ("HiddenFromAddressListsEnabled", rm.hidden_from_address_lists),
        ("OnPremisesOrganizationalUnit", f"{state.domain.split('.')[0]}.local/Users"),
        ("OriginatingServer", f"DC01.{state.domain.split('.')[0]}.local"),
        ("RecoverableItemsQuota", _quota("30 GB (32,212,254,720 bytes)", 32212254720)),
        ("WhenChanged", PSDateTime.fromtimestamp(state.clock.now().timestamp(), tz=dt.UTC)),
        ("IsValid", True),
    ]
    for key, value in rm.settings.items():
        if key not in {k for k, _ in props}:
            props.append((key, _psvalue(value)))
    for key, value in props:
        add_note_property(obj, key, value)
    return obj


def _quota(text: str, size: int) -> PSObject:
    """An Unlimited<ByteQuantifiedSize> as Exchange serializes it: properties plus its ToString."""
    obj = PSObject()
    obj.PSObject.type_names = [
        "Deserialized.Microsoft.Exchange.Data.Unlimited`1[[Microsoft.Exchange.Data.ByteQuantifiedSize, "
        "Microsoft.Exchange.Data, Version=15.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35]]",
        "Deserialized.System.ValueType",
        "Deserialized.System.Object",
    ]
    obj.PSObject.to_string = text
    add_note_property(obj, "IsUnlimited", False)
    add_note_property(obj, "Value", text.split(" (")[0])
    add_note_property(obj, "Bytes", size)
    return obj


def _single(value: Any) -> str:
    """A MultiValuedProperty bound as a list, where Exchange keeps one value (ArchiveName)."""
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return "" if value is None else str(value)


def _psvalue(value: Any) -> Any:
    if isinstance(value, list):
        return PSList([_psvalue(v) for v in value])
    if isinstance(value, str | bool | int | float) or value is None:
        return value
    return str(value)


def _plain(value: Any) -> Any:
    """psrpcore's deserialized argument -> plain Python (str, bool, int, float, list, dict)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    switch = getattr(value, "IsPresent", None)
    if isinstance(switch, bool):
        return switch
    return str(value)

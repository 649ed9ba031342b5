"""Security & Compliance retention policy and rule cmdlets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from m365archive.sim.exchange.core import (
    COMPLIANCE_TASK,
    TASK_ARGUMENT,
    CmdletError,
    Context,
    Result,
)
from m365archive.sim.state import (
    RetentionPolicy,
    RetentionRule,
    new_id,
)

if TYPE_CHECKING:
    from m365archive.sim.exchange.service import ExchangeService


MAX_POLICY_MAILBOXES = 1000  # exchange-facts.json rcp_limits


# -- Security & Compliance: retention -----------------------------------------------------------------------


def _policy(svc: ExchangeService, identity: Any) -> RetentionPolicy:
    key = str(identity).lower()
    for policy in svc.state.retention_policies.values():
        if key in (policy.name.lower(), policy.guid.lower()):
            return policy
    raise svc.not_found(identity)


def _policy_object(svc: ExchangeService, policy: RetentionPolicy) -> dict[str, Any]:
    return {
        "Identity": policy.guid,
        "Name": policy.name,
        "Guid": policy.guid,
        "Enabled": policy.enabled,
        "Mode": "Enforce",
        "Comment": policy.comment,
        "Workload": "Exchange",
        "ExchangeLocation": [_location_object(svc, x) for x in policy.exchange_locations]
        if svc.state.knobs.retention_location_objects
        else list(policy.exchange_locations),
        "DistributionStatus": policy.distribution_status,
        "Rules": [r.name for r in svc.state.retention_rules.values() if r.policy == policy.name],
    }


def _location_object(svc: ExchangeService, name: str) -> dict[str, Any]:
    """A location as the policy object holds it: read through `.Name` (Microsoft365DSC
    SCRetentionCompliancePolicy: `$policy.ExchangeLocation.Name`). The other fields are unverified."""
    user = svc.state.user_by_upn(name)
    return {
        "Name": name,
        "DisplayName": user.display_name if user else name,
        "ImmutableIdentity": user.id if user else name,
    }


def _settle(svc: ExchangeService, policy: RetentionPolicy) -> None:
    if policy.distribution_status == "Pending" and svc.state.clock.elapsed() >= policy.distributed_at:
        policy.distribution_status = "Success"


def _distribute(svc: ExchangeService, policy: RetentionPolicy) -> None:
    policy.distribution_status = "Pending"
    policy.distributed_at = svc.state.clock.elapsed() + svc.state.knobs.retention_distribution_delay
    _settle(svc, policy)


def _locations(svc: ExchangeService, values: Any) -> list[str]:
    out: list[str] = []
    for value in values or []:
        text = str(value)
        if text.lower() == "all":
            out.append("All")
            continue
        mbx = svc.find_mailbox(text)
        if mbx is None:
            raise svc.not_found(text)
        user = svc.user_of(mbx)
        out.append(user.user_principal_name if user else mbx.primary_smtp)
    return out


def _check_location_limit(policy_name: str, locations: list[str]) -> None:
    if "All" in locations and len(locations) > 1:
        raise CmdletError(TASK_ARGUMENT, "The value 'All' can't be combined with other Exchange locations.")
    if len(locations) > MAX_POLICY_MAILBOXES:
        # unverified text; the limit is documented (exchange-facts.json rcp_limits)
        raise CmdletError(
            COMPLIANCE_TASK,
            f"The policy '{policy_name}' would include {len(locations)} Exchange mailboxes. A static-scope "
            f"retention policy can include at most {MAX_POLICY_MAILBOXES} mailboxes; use an adaptive scope or "
            "split the mailboxes across policies.",
        )


def new_retention_policy(svc: ExchangeService, ctx: Context) -> Result:
    p = ctx.params
    name = str(p["Name"])
    if any(pol.name.lower() == name.lower() for pol in svc.state.retention_policies.values()):
        raise CmdletError(COMPLIANCE_TASK, f"A policy with the name '{name}' already exists.")  # unverified text
    locations = _locations(svc, p.get("ExchangeLocation"))
    _check_location_limit(name, locations)
    policy = RetentionPolicy(
        name=name,
        guid=new_id(),
        exchange_locations=locations,
        enabled=p.get("Enabled", True) is not False,
        comment=str(p.get("Comment") or ""),
    )
    _distribute(svc, policy)
    svc.state.retention_policies[name] = policy
    return Result(objects=[_policy_object(svc, policy)])


def get_retention_policy(svc: ExchangeService, ctx: Context) -> Result:
    if ctx.params.get("Identity"):
        policies = [_policy(svc, ctx.params["Identity"])]
    else:
        policies = list(svc.state.retention_policies.values())
    for policy in policies:
        _settle(svc, policy)
    return Result(objects=[_policy_object(svc, pol) for pol in policies])


def set_retention_policy(svc: ExchangeService, ctx: Context) -> Result:
    p = ctx.params
    policy = _policy(svc, p["Identity"])
    _settle(svc, policy)
    if policy.distribution_status == "Pending" and p.get("Force") is not True:
        # Set-RetentionCompliancePolicy: "wait until the policy distribution is successful before running the
        # cmdlet again" (cmdlet doc); refused otherwise (Microsoft365DSC#2719, #2728). The text is unverified.
        raise CmdletError(
            COMPLIANCE_TASK,
            f"The policy '{policy.name}' can't be changed while its earlier changes are still being deployed "
            "(DistributionStatus is Pending). Wait until distribution succeeds, then try again.",
        )
    locations = list(policy.exchange_locations)
    if p.get("AddExchangeLocation"):
        for loc in _locations(svc, p["AddExchangeLocation"]):
            if loc.lower() not in (x.lower() for x in locations):
                locations.append(loc)
    if p.get("RemoveExchangeLocation"):
        remove = {x.lower() for x in _locations(svc, p["RemoveExchangeLocation"])}
        locations = [x for x in locations if x.lower() not in remove]
    _check_location_limit(policy.name, locations)
    policy.exchange_locations = locations
    if "Enabled" in p:
        policy.enabled = bool(p["Enabled"])
    if "Comment" in p:
        policy.comment = str(p["Comment"] or "")
    _distribute(svc, policy)
    return Result()


def remove_retention_policy(svc: ExchangeService, ctx: Context) -> Result:
    policy = _policy(svc, ctx.params["Identity"])
    del svc.state.retention_policies[policy.name]
    for name in [n for n, r in svc.state.retention_rules.items() if r.policy == policy.name]:
        del svc.state.retention_rules[name]
    return Result()


def _rule_object(rule: RetentionRule, policy: RetentionPolicy | None) -> dict[str, Any]:
    return {
        "Identity": rule.guid,
        "Name": rule.name,
        "Guid": rule.guid,
        "Policy": policy.guid if policy else rule.policy,
        "RetentionDuration": rule.retention_duration,
        "RetentionComplianceAction": rule.retention_action,
        "Mode": "Enforce",
    }


def new_retention_rule(svc: ExchangeService, ctx: Context) -> Result:
    p = ctx.params
    policy = _policy(svc, p["Policy"])
    name = str(p.get("Name") or f"{policy.name} Rule")
    if name in svc.state.retention_rules:
        raise CmdletError(COMPLIANCE_TASK, f"A rule with the name '{name}' already exists.")  # unverified text
    duration = p.get("RetentionDuration", "Unlimited")
    rule = RetentionRule(
        name=name,
        guid=new_id(),
        policy=policy.name,
        retention_duration=str(duration),
        retention_action=str(p.get("RetentionComplianceAction") or "Keep"),
    )
    svc.state.retention_rules[name] = rule
    return Result(objects=[_rule_object(rule, policy)])


def get_retention_rule(svc: ExchangeService, ctx: Context) -> Result:
    p = ctx.params
    rules = list(svc.state.retention_rules.values())
    if p.get("Policy"):
        policy = _policy(svc, p["Policy"])
        rules = [r for r in rules if r.policy == policy.name]
    if p.get("Identity"):
        key = str(p["Identity"]).lower()
        rules = [r for r in rules if key in (r.name.lower(), r.guid.lower())]
        if not rules:
            raise svc.not_found(p["Identity"])
    return Result(objects=[_rule_object(r, svc.state.retention_policies.get(r.policy)) for r in rules])

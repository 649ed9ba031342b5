"""Step 5: consent to the third-party data connector app (appId 8dfbc50b-2111-4d03-9b4d-dd0d00aae7a2).

Nothing here is automatic: consent needs a global administrator in a browser. The step reads
whether the connector's service principal exists, reports it as a Check and a Finding, and puts
the admin-consent URL in the plan's instructions. EWS-based partner ingestion is retired, so a
present connector is flagged as access the tenant may want to remove (`m365archive consent revoke`).
"""

from __future__ import annotations

from m365archive.engine.plan import Check, Severity
from m365archive.partners import CONNECTOR_APP_ID, RETIREMENT
from m365archive.steps.base import StepContext, StepPlan, finding

NAME = "connector_consent"


async def plan(ctx: StepContext) -> StepPlan:
    from m365archive.consent import consent_state, consent_url, consent_url_caveat

    out = StepPlan()
    ctx.progress(f"reading the connector's service principal (app {CONNECTOR_APP_ID})")
    state = await consent_state(ctx.session)
    ctx.observe(
        "connector.consent",
        {
            "present": state.present,
            "id": state.sp_id,
            "grants": sorted(str(g.get("id")) for g in state.oauth2_permission_grants),
            "app_roles": sorted(str(a.get("id")) for a in state.app_role_assignments),
        },
    )
    ctx.facts["connector_consent_present"] = state.present
    target = f"third-party data connector ({CONNECTOR_APP_ID})"
    if state.present:
        out.checks.append(
            Check(
                "connector consent",
                True,
                f"service principal {state.sp_id} present: {len(state.oauth2_permission_grants)} delegated "
                f"grant(s), {len(state.app_role_assignments)} app role assignment(s)",
            )
        )
        out.findings.append(
            finding(
                NAME,
                target,
                Severity.WARNING,
                f"the connector holds consent in this tenant, but the route it serves was retired on "
                f"{RETIREMENT['date']}",
                "if no partner still needs it: `m365archive consent revoke` (deletes its service principal)",
                category="consent",
            )
        )
        return out
    url = consent_url(ctx.session.endpoints)
    out.checks.append(Check("connector consent", False, "absent: no service principal for the connector app"))
    out.findings.append(
        finding(
            NAME,
            target,
            Severity.INFO,
            "Step 5 is not done: a global administrator has not consented to the connector app (this tool "
            "can't consent for them)",
            "`m365archive consent grant` (states the retirement, opens the consent page, waits for the "
            "service principal)",
            category="consent",
        )
    )
    out.instructions.append(
        f"Step 5 (manual, global administrator, retired route): consent to the third-party data connector at "
        f"{url} , or run `m365archive consent grant`; check with `m365archive consent status`."
    )
    caveat = consent_url_caveat(ctx.session.endpoints)
    if caveat:
        out.instructions.append(f"The consent URL is {caveat}.")
    return out

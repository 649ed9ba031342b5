"""Steps 1 and 4: the partner chosen in the config, and what to hand it.

Reads nothing from the tenant and never touches a secret: it adds notices and instructions (the
partner, the ingestion endpoint for the tenant's cloud, `m365archive partner-info` for the packet)
and says out loud that the handoff gives an administrator's password away for a retired route.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from m365archive.config import Config
from m365archive.engine.checks import Check
from m365archive.engine.plan import Severity
from m365archive.partners import RETIREMENT, find_partner
from m365archive.steps.base import StepContext, StepPlan, finding
from m365archive.steps.signin_policies import catchall_mfa_check

if TYPE_CHECKING:
    from m365archive.tenant.clouds import Cloud

NAME = "partner_handoff"


async def plan(ctx: StepContext) -> StepPlan:
    from m365archive.tenant.clouds import get_cloud

    out = handoff_plan(ctx.config, get_cloud(ctx.session.endpoints.cloud))
    if ctx.config.catchall:
        ctx.progress("reading the sign-in policies that apply to the catch-all (Security defaults, Conditional Access)")
        out.checks.append(await catchall_mfa_check(ctx, ctx.config.catchall.upn))
    return out


def handoff_plan(config: Config, cloud: Cloud) -> StepPlan:
    """Steps 1 and 4 from the config and the tenant's cloud (nothing is read from the tenant)."""
    out = StepPlan()
    upn = config.catchall.upn if config.catchall else "(no catch-all account configured)"

    _partner(out, config)

    # Step 4: the handoff.
    if cloud.ingestion_endpoint:
        endpoint = f"the ingestion endpoint {cloud.ingestion_endpoint}"
    else:
        endpoint = (
            f"an ingestion endpoint (none is documented for {cloud.title}: pass one with "
            "`partner-info --ingestion-endpoint URL`)"
        )
    out.instructions.append(
        f"Step 4 (manual): give the partner {endpoint} and the sign-in of {upn}. "
        "`m365archive partner-info` writes the packet; `--include-secret --out FILE` adds the password "
        "in a file only you can read."
    )
    out.findings.append(
        finding(
            NAME,
            upn,
            Severity.HIGH,
            f"Step 4 hands the password of an Exchange Administrator to a third party, for a route Microsoft "
            f"retired on {RETIREMENT['date']}",
            "hand it over only if an audit requires the documented procedure; rotate it afterwards with "
            "`m365archive credentials rotate`",
            category="handoff",
        )
    )
    return out


def _partner(out: StepPlan, config: Config) -> None:
    """Step 1: the partner chosen in the config, checked against the reference page's list."""
    if config.partner:
        partner = find_partner(config.partner)
        if partner:
            out.notices.append(f"Partner chosen: {partner.name} ({partner.website}).")
            out.checks.append(
                Check("partner", f"{partner.name} supports {len(partner.sources)} data source(s)", False, True)
            )
        else:
            out.notices.append(f"Partner chosen: {config.partner} (not in the reference page's partner list).")
            out.checks.append(
                Check(
                    "partner",
                    f"{config.partner!r} is not in the partner catalog",
                    False,
                    False,
                    "check the name with `m365archive partners`",
                )
            )
            out.findings.append(
                finding(
                    NAME,
                    config.partner,
                    Severity.WARNING,
                    "the configured partner is not one the reference page lists",
                    "check the name with `m365archive partners`",
                )
            )
    else:
        out.checks.append(
            Check(
                "partner",
                "no partner chosen",
                False,
                False,
                'find one with `m365archive partners --source <data source>` and set `partner = "..."`',
            )
        )
        out.findings.append(
            finding(
                NAME,
                "partner",
                Severity.INFO,
                "Step 1: no partner is chosen in the config",
                'find one with `m365archive partners --source <data source>` and set `partner = "..."`',
            )
        )

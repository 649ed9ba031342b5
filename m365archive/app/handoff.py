"""Step 4 of the documented procedure: the partner handoff packet (ingestion endpoint, catch-all
UPN, tenant, consent state, message format), with the catch-all password only when asked for.
No typer, no terminals."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from m365archive.config import Config
from m365archive.errors import CommandError, Reason
from m365archive.partners import (
    INGESTION_ADVICE,
    MESSAGE_CLASS_FORMAT,
    MESSAGE_PROPERTIES,
    RETIREMENT,
    find_partner,
)
from m365archive.report.markdown import secret_block
from m365archive.steps.connector_consent import ConsentState, consent_state
from m365archive.tenant.session import TenantSession
from m365archive.wellknown import CONNECTOR_APP_ID


@dataclass
class Handoff:
    tenant_id: str
    domain: str
    cloud: str
    catchall_upn: str
    ingestion_endpoint: str | None
    endpoint_note: str
    consent: ConsentState
    partner: str | None
    partner_note: str = ""
    password: str | None = field(default=None, repr=False)

    def to_dict(self, *, include_secret: bool = False) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "retirement": {"date": RETIREMENT["date"], "source": RETIREMENT["url"], "summary": RETIREMENT["summary"]},
            "partner": self.partner,
            "tenant": {"id": self.tenant_id, "domain": self.domain, "cloud": self.cloud},
            "ingestion_endpoint": self.ingestion_endpoint,
            "ingestion_endpoint_note": self.endpoint_note,
            "catchall": {"userPrincipalName": self.catchall_upn},
            "connector_consent": {
                "app_id": CONNECTOR_APP_ID,
                "present": self.consent.present,
                "service_principal_id": self.consent.sp_id,
            },
            "message_properties": [
                {"name": p.name, "mandatory": p.mandatory, "description": p.description, "example": p.example}
                for p in MESSAGE_PROPERTIES
            ],
            "message_class_format": MESSAGE_CLASS_FORMAT,
            "ingestion_advice": INGESTION_ADVICE,
        }
        if include_secret:
            doc["catchall"]["password"] = self.password
        return doc

    def markdown(self, *, include_secret: bool = False) -> str:
        def md(value: object) -> str:
            return str(value).replace("|", "\\|").replace("\n", "<br>")

        lines = [
            "# Partner handoff: third-party data ingestion",
            "",
            f"> **Retired route.** {RETIREMENT['summary']} Source: {RETIREMENT['url']}",
            "",
        ]
        if self.partner:
            lines += [f"Partner: {self.partner}{(' (' + self.partner_note + ')') if self.partner_note else ''}", ""]
        lines += [
            "| | |",
            "|:--|:--|",
            f"| Tenant id | {md(self.tenant_id)} |",
            f"| Tenant domain | {md(self.domain)} |",
            f"| Cloud | {md(self.cloud)} |",
            f"| Ingestion endpoint | {md(self.ingestion_endpoint or '(none known: see the note)')} |",
            f"| Catch-all account (sign-in) | {md(self.catchall_upn)} |",
        ]
        consent = (
            f"present (service principal {self.consent.sp_id})" if self.consent.present else "absent (not consented)"
        )
        lines += [f"| Connector consent (app {CONNECTOR_APP_ID}) | {consent} |", ""]
        if self.endpoint_note:
            lines += [f"Note: {self.endpoint_note}", ""]
        if include_secret:
            lines += secret_block(f"Catch-all password ({self.catchall_upn})", self.password or "")
        else:
            lines += [
                "The catch-all password is not in this packet. It is handed over separately "
                "(`m365archive partner-info --include-secret --out FILE` writes a file only you can read).",
                "",
            ]
        lines += [
            "## Message properties partners must populate",
            "",
            f"MESSAGECLASS has the form `{MESSAGE_CLASS_FORMAT}`. Items missing a mandatory property are not imported.",
            "",
            "| Property | Mandatory | Example |",
            "|:--|:--|:--|",
        ]
        for p in MESSAGE_PROPERTIES:
            lines.append(f"| {p.name} | {'yes' if p.mandatory else 'no'} | {md(p.example)} |")
        lines += ["", "## Logging", "", INGESTION_ADVICE, ""]
        return "\n".join(lines)


async def handoff(
    config: Config,
    session: TenantSession,
    *,
    ingestion_endpoint: str | None = None,
) -> Handoff:
    """Everything Step 4 hands the partner, read from the tenant (no secret)."""
    from m365archive.tenant.clouds import get_cloud

    if config.catchall is None:
        raise CommandError("the config has no [catchall] table: there is no catch-all account", Reason.USAGE)
    e = session.endpoints
    cloud = get_cloud(e.cloud)
    note = ""
    endpoint = ingestion_endpoint or cloud.ingestion_endpoint
    if ingestion_endpoint and cloud.ingestion_endpoint and ingestion_endpoint != cloud.ingestion_endpoint:
        note = f"--ingestion-endpoint replaces the documented endpoint {cloud.ingestion_endpoint}."
    elif cloud.ingestion_endpoint is None:
        note = (
            f"The reference page gives an ingestion endpoint for the commercial cloud only; none is documented for "
            f"{cloud.title}."
            + (
                " The endpoint above was given with --ingestion-endpoint."
                if ingestion_endpoint
                else " Ask Microsoft support or your partner, and pass it with --ingestion-endpoint URL."
            )
        )
    partner_note = ""
    partner = config.partner
    if partner:
        found = find_partner(partner)
        partner, partner_note = (found.name, "") if found else (partner, "not in the reference page's partner list")
    return Handoff(
        tenant_id=e.tenant_id,
        domain=e.domain,
        cloud=e.cloud,
        catchall_upn=config.catchall.upn,
        ingestion_endpoint=endpoint,
        endpoint_note=note,
        consent=await consent_state(session),
        partner=partner,
        partner_note=partner_note,
    )

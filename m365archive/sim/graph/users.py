"""Graph users: list, get, create, update, assignLicense."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from m365archive.sim.graph.core import (
    Ctx,
    GraphCore,
    Reply,
    _iso,
    bad_request,
    invalid_value,
    not_found,
    render,
)
from m365archive.sim.graph_query import Getter
from m365archive.sim.state import (
    User,
    new_id,
)

USER_FIELDS: dict[str, Getter] = {
    "id": lambda u: u.id,
    "userPrincipalName": lambda u: u.user_principal_name,
    "displayName": lambda u: u.display_name,
    "mail": lambda u: u.mail,
    "mailNickname": lambda u: u.mail_nickname,
    "usageLocation": lambda u: u.usage_location,
    "accountEnabled": lambda u: u.account_enabled,
    "onPremisesSyncEnabled": lambda u: u.on_premises_sync_enabled,
    "assignedLicenses": lambda u: [
        {"disabledPlans": list(u.disabled_plans.get(s, [])), "skuId": s} for s in u.assigned_licenses
    ],
    "createdDateTime": lambda u: _iso(u.created),
    "userType": lambda u: u.user_type,
    "proxyAddresses": lambda u: [f"SMTP:{u.mail}"] if u.mail else [],
    "businessPhones": lambda u: [],
    "otherMails": lambda u: [],
    "givenName": lambda u: None,
    "surname": lambda u: None,
    "jobTitle": lambda u: None,
    "department": lambda u: None,
    "companyName": lambda u: None,
    "employeeId": lambda u: None,
    "mobilePhone": lambda u: None,
    "officeLocation": lambda u: None,
    "preferredLanguage": lambda u: None,
    "onPremisesImmutableId": lambda u: None,
    "passwordPolicies": lambda u: None,
    "passwordProfile": lambda u: None,  # never returned: Graph answers null
    "deletedDateTime": lambda u: None,
    "signInSessionsValidFromDateTime": lambda u: _iso(u.sign_in_sessions_valid_from or u.created),
}
USER_DEFAULT = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
USER_FILTERABLE = (
    "id",
    "userPrincipalName",
    "mail",
    "displayName",
    "mailNickname",
    "usageLocation",
    "accountEnabled",
    "onPremisesSyncEnabled",
    "assignedLicenses",
    "userType",
    "proxyAddresses",
    "givenName",
    "surname",
)
USER_FILTER_FIELDS = {name: USER_FIELDS[name] for name in USER_FILTERABLE}
# properties a synced user's source of authority (on-premises AD) owns
SYNCED_ATTRIBUTES = {"displayName", "mailNickname", "userPrincipalName", "mail", "accountEnabled"}
USER_READ_ONLY = {"id", "createdDateTime", "assignedLicenses", "onPremisesSyncEnabled", "deletedDateTime"}


def password_ok(password: Any) -> bool:
    """Entra ID's rule: 8-256 characters, three of lower, upper, digit, symbol."""
    if not isinstance(password, str) or not 8 <= len(password) <= 256:
        return False
    classes = [
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    ]
    return sum(classes) >= 3


WEAK_PASSWORD = (
    "The specified password does not comply with password complexity requirements. Please provide a different password."
)


class UsersMixin(GraphCore):
    # -- users -----------------------------------------------------------------------------------
    def user(self, key: str) -> User:
        user = self.state.find_user(key)
        if user is None:
            raise not_found(key)
        return user

    def replicated_user(self, key: str) -> User:
        """The user a write names: right after POST /users the write may reach a replica that has not seen
        it yet and answers "does not exist" (microsoftgraph/msgraph-sdk-dotnet#2772, Azure/azure-powershell#6493;
        knob user_replication_delay)."""
        user = self.user(key)
        if self.state.clock.elapsed() < user.replicated_at:
            raise not_found(key)
        return user

    def user_json(self, ctx: Ctx, user: User, select: list[str] | None = None) -> dict[str, Any]:
        return render(user, USER_FIELDS, select or USER_DEFAULT)

    def list_users(self, ctx: Ctx) -> Reply:
        select = self.select(ctx, USER_FIELDS, "user", USER_DEFAULT)
        flt = self.filter(ctx, USER_FILTER_FIELDS, "User")
        users = self.state.users

        def compute() -> list[Any]:
            if flt is None:
                return list(users.values())
            upn = flt.equals.get("userPrincipalName")
            candidates: Iterable[User] = users.values()
            if isinstance(upn, str):
                found = self.state.user_by_upn(upn)
                candidates = [found] if found else []
            return [u for u in candidates if flt.predicate(u)]

        return self.page(ctx, "users", compute, lambda u: render(u, USER_FIELDS, select), select=select)

    def get_user(self, ctx: Ctx) -> Reply:
        select = self.select(ctx, USER_FIELDS, "user", USER_DEFAULT)
        user = self.user(ctx.params["user_id"])
        body = {"@odata.context": self.context(ctx, "users", select, entity=True)}
        body.update(render(user, USER_FIELDS, select))
        return Reply(200, body)

    def check_upn_domain(self, upn: str) -> None:
        domain = upn.rsplit("@", 1)[-1].lower() if "@" in upn else ""
        allowed = {self.state.domain.lower(), *(d.lower() for d in self.state.verified_domains)}
        if "@" not in upn or not upn.split("@")[0] or domain not in allowed:
            raise bad_request(
                "The domain portion of the userPrincipalName property is invalid. "
                "You must use one of the verified domain names in your organization."
            )

    def check_unknown_user_props(self, body: dict[str, Any]) -> None:
        for key in body:
            if key.startswith("@"):
                continue
            if key not in USER_FIELDS:
                raise bad_request(
                    f"The property '{key}' does not exist on type 'microsoft.graph.user'. Make sure to only "
                    "use property names that are defined by the type or mark the type as open type.",
                    "BadRequest",
                )

    def create_user(self, ctx: Ctx) -> Reply:
        body = self.body_object(ctx)
        self.check_unknown_user_props(body)
        for prop in ("accountEnabled", "displayName", "mailNickname", "userPrincipalName", "passwordProfile"):
            if body.get(prop) is None or body.get(prop) == "":
                raise invalid_value(prop, "User")
        if not isinstance(body["accountEnabled"], bool):
            raise invalid_value("accountEnabled", "User")
        profile = body["passwordProfile"]
        if not isinstance(profile, dict) or not profile.get("password"):
            raise invalid_value("passwordProfile", "User")
        upn = str(body["userPrincipalName"])
        self.check_upn_domain(upn)
        if not password_ok(profile["password"]):
            raise bad_request(WEAK_PASSWORD)
        usage = body.get("usageLocation")
        if usage is not None and not _usage_location_ok(usage):
            raise invalid_value("usageLocation", "User")
        if self.state.user_by_upn(upn):
            raise bad_request("Another object with the same value for property userPrincipalName already exists.")
        user = self.state.add_user(
            User(
                id=new_id(),
                user_principal_name=upn,
                display_name=str(body["displayName"]),
                mail_nickname=str(body["mailNickname"]),
                usage_location=usage.upper() if isinstance(usage, str) else None,
                account_enabled=body["accountEnabled"],
                password=str(profile["password"]),
                created=self.state.clock.now(),
                replicated_at=self.state.clock.elapsed() + self.state.knobs.user_replication_delay,
            )
        )
        reply = {"@odata.context": self.context(ctx, "users", entity=True)}
        reply.update(self.user_json(ctx, user))
        return Reply(201, reply, {"Location": f"{ctx.base}/users/{user.id}"})

    def revoke_sign_in_sessions(self, ctx: Ctx) -> Reply:
        """POST /users/{id}/revokeSignInSessions: refresh and session tokens issued before now stop working
        (signInSessionsValidFromDateTime moves to now); answers the Edm.Boolean true (user-revokesigninsessions)."""
        user = self.replicated_user(ctx.params["user_id"])
        user.sign_in_sessions_valid_from = self.state.clock.now()
        return Reply(200, {"@odata.context": f"{ctx.base}/$metadata#Edm.Boolean", "value": True})

    def update_user(self, ctx: Ctx) -> Reply:
        user = self.replicated_user(ctx.params["user_id"])
        body = self.body_object(ctx)
        self.check_unknown_user_props(body)
        for key in body:
            if key in USER_READ_ONLY:
                raise bad_request(f"Property '{key}' is read-only and cannot be set.", "BadRequest")
        if user.on_premises_sync_enabled and SYNCED_ATTRIBUTES & set(body):
            raise bad_request(
                "Unable to update the specified properties for on-premises mastered Directory Sync objects "
                "or objects currently undergoing migration."
            )
        # validate everything before changing anything
        if "accountEnabled" in body and not isinstance(body["accountEnabled"], bool):
            raise invalid_value("accountEnabled", "User")
        if "displayName" in body and not (isinstance(body["displayName"], str) and body["displayName"]):
            raise invalid_value("displayName", "User")
        if "usageLocation" in body:
            usage = body["usageLocation"]
            if usage is None and user.assigned_licenses:
                raise invalid_value("usageLocation", "User")
            if usage is not None and not _usage_location_ok(usage):
                raise invalid_value("usageLocation", "User")
        if "passwordProfile" in body:
            profile = body["passwordProfile"]
            if not isinstance(profile, dict):
                raise invalid_value("passwordProfile", "User")
            if "password" in profile and not password_ok(profile["password"]):
                raise bad_request(WEAK_PASSWORD)
        new_upn = body.get("userPrincipalName")
        if new_upn is not None:
            self.check_upn_domain(str(new_upn))
            other = self.state.user_by_upn(str(new_upn))
            if other and other.id != user.id:
                raise bad_request("Another object with the same value for property userPrincipalName already exists.")
        # apply
        if "accountEnabled" in body:
            user.account_enabled = body["accountEnabled"]
        if "displayName" in body:
            user.display_name = body["displayName"]
        if "usageLocation" in body:
            usage = body["usageLocation"]
            user.usage_location = usage.upper() if isinstance(usage, str) else None
        if "passwordProfile" in body and body["passwordProfile"].get("password"):
            user.password = str(body["passwordProfile"]["password"])
        if body.get("mailNickname"):
            user.mail_nickname = str(body["mailNickname"])
        if "mail" in body:
            user.mail = body["mail"] or None
        if new_upn is not None and str(new_upn) != user.user_principal_name:
            self.state.rename_user(user, str(new_upn))
        return Reply(204)

    def assign_license(self, ctx: Ctx) -> Reply:
        user = self.replicated_user(ctx.params["user_id"])
        body = self.body_object(ctx)
        add = body.get("addLicenses")
        remove = body.get("removeLicenses")
        if not isinstance(add, list):
            raise invalid_value("addLicenses", "User")
        if not isinstance(remove, list):
            raise invalid_value("removeLicenses", "User")
        adds: list[tuple[str, list[str]]] = []
        for entry in add:
            sku_id = str(entry.get("skuId", "")).lower() if isinstance(entry, dict) else ""
            if sku_id not in self.state.skus:
                raise bad_request(f"License {sku_id} does not correspond to a valid company License.")
            disabled = entry.get("disabledPlans") or []
            if not isinstance(disabled, list):
                raise invalid_value("disabledPlans", "AssignedLicense")
            adds.append((sku_id, [str(p).lower() for p in disabled]))
        removes = [str(r).lower() for r in remove]
        for sku_id in removes:
            if sku_id not in user.assigned_licenses:
                raise bad_request("User does not have a corresponding license.")
        if adds and not user.usage_location:
            raise bad_request("License assignment cannot be done for user with invalid usage location.")
        for sku_id, _ in adds:
            sku = self.state.skus[sku_id]
            if sku_id not in user.assigned_licenses and self.state.consumed_units(sku_id) >= sku.enabled:
                raise bad_request("License assignment failed because there are no available licenses.")
        for sku_id in removes:
            user.assigned_licenses.remove(sku_id)
            user.disabled_plans.pop(sku_id, None)
        for sku_id, disabled in adds:
            if sku_id not in user.assigned_licenses:
                user.assigned_licenses.append(sku_id)
            user.disabled_plans[sku_id] = disabled
        self.state.ensure_mailbox(user)
        reply = {"@odata.context": self.context(ctx, "users", entity=True)}
        reply.update(self.user_json(ctx, user))
        return Reply(200, reply)


def _usage_location_ok(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 2 and value.isalpha() and value.isascii()

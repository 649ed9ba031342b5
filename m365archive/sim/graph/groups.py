"""Graph groups: direct and transitive members."""

from __future__ import annotations

from typing import Any

from m365archive.sim.graph.core import (
    Ctx,
    GraphCore,
    Reply,
    not_found,
    render,
)
from m365archive.sim.graph.users import USER_DEFAULT, USER_FIELDS, USER_FILTER_FIELDS
from m365archive.sim.graph_query import Getter
from m365archive.sim.state import (
    User,
)

GROUP_FIELDS: dict[str, Getter] = {
    "id": lambda g: g.id,
    "displayName": lambda g: g.display_name,
    "deletedDateTime": lambda g: None,
}


class GroupsMixin(GraphCore):
    # -- groups ----------------------------------------------------------------------------------
    def group_members_of(self, group_id: str, *, transitive: bool) -> list[Any]:
        group = self.state.groups.get(group_id)
        if group is None:
            raise not_found(group_id)
        out: list[Any] = []
        seen: set[str] = {group.id}
        queue = list(group.members)
        while queue:
            member_id = queue.pop(0)
            if member_id in seen:
                continue
            seen.add(member_id)
            user = self.state.users.get(member_id)
            if user is not None:
                out.append(user)
                continue
            nested = self.state.groups.get(member_id)
            if nested is not None:
                out.append(nested)
                if transitive:
                    queue.extend(nested.members)
        return out

    def _members(self, ctx: Ctx, *, transitive: bool, users_only: bool) -> Reply:
        select = self.select(ctx, USER_FIELDS, "user", USER_DEFAULT) if users_only else None
        flt = self.filter(ctx, USER_FILTER_FIELDS, "User") if users_only else None
        members = self.group_members_of(ctx.params["group_id"], transitive=transitive)

        def compute() -> list[Any]:
            if users_only:
                return [m for m in members if isinstance(m, User) and (flt is None or flt.predicate(m))]
            return members

        def render_member(member: Any) -> dict[str, Any]:
            if isinstance(member, User):
                data = render(member, USER_FIELDS, select or USER_DEFAULT)
                return data if users_only else {"@odata.type": "#microsoft.graph.user", **data}
            return {"@odata.type": "#microsoft.graph.group", **render(member, GROUP_FIELDS, GROUP_FIELDS)}

        return self.page(ctx, "users" if users_only else "directoryObjects", compute, render_member, select=select)

    def group_members(self, ctx: Ctx) -> Reply:
        return self._members(ctx, transitive=False, users_only=False)

    def group_member_users(self, ctx: Ctx) -> Reply:
        return self._members(ctx, transitive=False, users_only=True)

    def group_transitive_members(self, ctx: Ctx) -> Reply:
        return self._members(ctx, transitive=True, users_only=False)

    def group_transitive_users(self, ctx: Ctx) -> Reply:
        return self._members(ctx, transitive=True, users_only=True)

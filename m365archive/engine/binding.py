"""The approved plan is the applied plan: bind a saved plan to a fresh re-plan before anything is sent.

Apply re-plans from the current config and tenant with the saved selection replayed, then sends
nothing unless the re-planned changes equal the saved changes minus those this plan's journal
records as done. So an approved plan that was interrupted (Ctrl-C, a crash, SIGKILL, a partial
apply) resumes without a new approval, and an edited plan, or one made from another config, is
refused as a mismatch, never reported as "the tenant changed".

When resuming, the re-plan decides about the rest: a saved change the tenant already shows done (sent
with no outcome recorded because the run died with it in flight, or made unnecessary by what the run
did, e.g. a new mailbox's defaults) is not sent; a re-planned change that the saved plan does not
hold, or holds with other values, is refused.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from m365archive.engine.plan import REF, Change, Plan, canonical_json, digest_matches, short_digest


class PlanRefused(Exception):
    """A saved plan that must not be applied; `reason` is "mismatch" or "stale"."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def mismatch(message: str) -> PlanRefused:
    return PlanRefused("mismatch", message)


def stale(message: str) -> PlanRefused:
    return PlanRefused("stale", message)


def check_digest(saved: Plan, expect: str | None = None) -> None:
    """The file's digest matches its contents, and (if given) the digest the ticket approved."""
    actual = saved.compute_digest()
    if saved.digest != actual:
        raise mismatch(
            "the plan file was edited after it was made: its digest does not match its contents, so nothing was sent"
        )
    if expect is not None and not digest_matches(actual, expect):
        raise mismatch(
            f"the plan's digest {short_digest(actual)} is not the approved {expect.strip()[:71]}, so nothing was sent"
        )


def check_tenant(saved: Plan, tenant_id: str) -> None:
    if saved.tenant.get("id", "").lower() != tenant_id.lower():
        raise stale(f"the plan is for tenant {saved.tenant.get('id')}, not {tenant_id}; nothing was sent")


@dataclass
class Binding:
    plan: Plan  # what to apply: the re-planned changes, under the saved plan's id and digest
    resumed: int = 0  # changes an earlier run of this plan completed
    total: int = 0  # the saved plan's pending changes

    @property
    def message(self) -> str:
        if not self.resumed:
            return ""
        left = len(self.plan.pending)
        return (
            f"Resuming plan {short_digest(self.plan.digest)}: {self.resumed} of {self.total} change(s) were "
            f"applied by an earlier run of this plan; {left} left."
        )


def bind(
    saved: Plan,
    current: Plan,
    done: dict[str, dict[str, Any]],
    in_doubt: set[str],
    *,
    replan_hint: str,
) -> Binding:
    """Compare the saved plan with a re-plan made now (same config, same selection)."""
    if current.config_digest != saved.config_digest or current.procedure != saved.procedure:
        raise mismatch(
            "the plan was made from another config than this one (its config digest differs), so nothing was "
            f"sent; {replan_hint}"
        )
    saved_pending = [c for c in saved.pending if c.id not in done]
    started = bool(done) or bool(in_doubt & {c.id for c in saved.pending})
    if not started:
        if current.fingerprint != saved.fingerprint:
            raise stale(
                "Saved plan is stale: the tenant changed since the plan was made, so nothing was sent. " + replan_hint
            )
        diff = _difference(saved_pending, current.pending, strict=True, outputs={})
        if diff:
            raise mismatch(
                f"the plan's changes differ from what this config plans for this tenant ({diff}): the file was "
                f"edited, or made from another config; nothing was sent. {replan_hint}"
            )
    else:
        diff = _difference(saved_pending, current.pending, strict=False, outputs=done)
        if diff.startswith("changed"):
            raise mismatch(
                f"the plan's changes differ from what this config plans for this tenant ({diff}): the file was "
                f"edited, or made from another config; nothing was sent. {replan_hint}"
            )
        if diff:
            raise stale(
                "Saved plan is stale: the tenant changed since the plan was made, beyond what its earlier "
                f"run(s) did ({diff}), so nothing was sent. " + replan_hint
            )
    applied = dataclasses.replace(
        current,
        plan_id=saved.plan_id,
        created=saved.created,
        digest=saved.digest,
    )
    resumed = len([c for c in saved.pending if c.id in done])
    return Binding(applied, resumed=resumed if started else 0, total=len(saved.pending))


def _difference(
    saved: list[Change],
    current: list[Change],
    *,
    strict: bool,
    outputs: dict[str, dict[str, Any]],
) -> str:
    """ "" when equal; else a short account: "changed: X", "added: X" or "missing: X"."""
    want = {c.id: _comparable(c, strict, outputs) for c in saved}
    have = {c.id: _comparable(c, strict, outputs) for c in current}
    changed = sorted(cid for cid in want.keys() & have.keys() if want[cid] != have[cid])
    added = sorted(have.keys() - want.keys())
    missing = sorted(want.keys() - have.keys()) if strict else []  # resuming: already in place, not sent
    if changed:
        return f"changed: {_some(changed)}"
    if added:
        return f"not in the plan: {_some(added)}"
    if missing:
        return f"no longer planned: {_some(missing)}"
    return ""


def _some(ids: list[str]) -> str:
    return ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")


def _comparable(change: Change, strict: bool, outputs: dict[str, dict[str, Any]]) -> str:
    """Strict: the whole change. Resuming: what it sends and sets, with values an earlier run learned
    (references to completed changes) filled in; `before`, dependencies and waits may differ."""
    data = change.to_dict()
    if not strict:
        op = data.get("operation") or {}
        data = {
            "action": data["action"],
            "target": data["target"],
            "setting": data["setting"],
            "after": data.get("after"),
            "sensitive": data.get("sensitive", False),
            "operation": {k: op.get(k) for k in ("kind", "request", "ok_if_error")} if op else None,
        }
    text = canonical_json(data)

    def fill(m: Any) -> str:
        value = outputs.get(m.group(1), {}).get(m.group(2))
        return m.group(0) if value is None else json.dumps(str(value))[1:-1]

    return REF.sub(fill, text) if outputs else text

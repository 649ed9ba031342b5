"""What every Exchange cmdlet handler shares: errors, results, the call context, exception names, paging."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_PAGE = 1000
DEFAULT_RESULT_SIZE = 1000

NOT_FOUND = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"
RECIPIENT_TASK = "Microsoft.Exchange.Management.Tasks.RecipientTaskException"
PROVISIONING = "Microsoft.Exchange.Configuration.Tasks.ProvisioningValidationException"
TASK_ARGUMENT = "Microsoft.Exchange.Configuration.Tasks.TaskArgumentException"
MEMBER_EXISTS = "Microsoft.Exchange.Management.Tasks.MemberAlreadyExistsException"
COMPLIANCE_TASK = "Microsoft.Office.CompliancePolicy.Tasks.CompliancePolicyException"
THROTTLING = "Microsoft.Exchange.Management.PowerShell.ThrottlingException"  # unverified

RESULT_SIZE_WARNING = (
    "By default, only the first 1000 items are returned. Use the ResultSize parameter to specify the "
    'number of items returned. To return all items, specify "-ResultSize Unlimited". Be aware that, '
    "depending upon the actual number of items, returning all items can take a long time and consume a "
    "large amount of memory. Also, we don't recommend storing the results in a variable. Instead, pipe "
    "the results to another task or script to perform batch changes."
)


class CmdletError(Exception):
    """A cmdlet failed: becomes the error body (status 400 unless said otherwise)."""

    def __init__(self, exception: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.exception = exception
        self.message = message
        self.status = status


@dataclass
class Result:
    objects: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    next_cursor: str | None = None


@dataclass
class Context:
    """One cmdlet call."""

    side: str  # "exchange-online" or "compliance"
    name: str  # spec casing
    params: dict[str, Any]  # spec casing, values checked by the binder
    page_size: int
    cursor: str | None


# -- paging ------------------------------------------------------------------------------------------


def _page(
    ctx: Context,
    source: list[Any],
    keep: Callable[[Any], bool],
    render: Callable[[Any], dict[str, Any]],
) -> Result:
    """One page of a Get- cmdlet's output.

    `source` is in a stable order (insertion order of the state's dicts); the cursor holds the
    position in it and how many objects were returned so far, so a page costs O(page), not O(n).
    """
    start, returned = 0, 0
    if ctx.cursor:
        try:
            data = json.loads(base64.urlsafe_b64decode(ctx.cursor + "=" * (-len(ctx.cursor) % 4)))
            start, returned = int(data["i"]), int(data["n"])
            if data.get("c") != ctx.name:
                raise ValueError("cursor for another cmdlet")
        except (ValueError, KeyError, TypeError):
            raise CmdletError("System.ArgumentException", "The $skiptoken is not valid for this request.") from None
    raw_size = ctx.params.get("ResultSize")
    limit = None if raw_size == "Unlimited" else int(raw_size) if raw_size is not None else DEFAULT_RESULT_SIZE
    out: list[dict[str, Any]] = []
    i = start
    n = len(source)
    while i < n and len(out) < ctx.page_size and (limit is None or returned + len(out) < limit):
        item = source[i]
        i += 1
        if keep(item):
            out.append(render(item))
    # Move the cursor to the next match, so each item is looked at once over all pages.
    while i < n and not keep(source[i]):
        i += 1
    result = Result(objects=out)
    if i < n and (limit is None or returned + len(out) < limit):
        token = json.dumps({"i": i, "n": returned + len(out), "c": ctx.name}, separators=(",", ":"))
        result.next_cursor = base64.urlsafe_b64encode(token.encode()).rstrip(b"=").decode()
    elif i < n and raw_size is None:
        result.warnings.append(RESULT_SIZE_WARNING)
    return result


def _page_size(prefer: str) -> int:
    match = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", prefer)
    if not match:
        return MAX_PAGE
    return max(1, min(int(match.group(1)), MAX_PAGE))

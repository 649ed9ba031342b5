"""What every Exchange runner offers, whatever its transport.

Two implementations: `exchange_rest.RestExchangeRunner` (Exchange Online and Security &
Compliance through the InvokeCommand REST endpoint) and `onprem.OnPremExchangeRunner`
(on-premises Exchange Server through pypsrp). Steps and the engine see only this protocol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from m365archive.powershell import command
from m365archive.wellknown import NULL_GUID


@dataclass(frozen=True)
class Cmdlet:
    """One cmdlet call: its name and parameters as PowerShell would bind them.

    Switches are passed as True. Multi-valued parameters are lists.
    """

    name: str
    parameters: dict[str, Any] = field(default_factory=dict)

    def powershell(self) -> str:
        """The line an Exchange admin would type for this call (every value a quoted literal)."""
        return command(self.name, self.parameters)


NO_ARCHIVE_GUID = NULL_GUID  # what Get-Mailbox shows as ArchiveGuid without an archive


def has_archive(mailbox: dict[str, Any]) -> bool:
    """Whether a Get-Mailbox object has an archive, read from ArchiveGuid (and ArchiveDatabase when the
    object carries it), never from ArchiveStatus: ArchiveStatus can read None for an active cloud
    archive (re-licensed users, mailboxes moved from on-premises). Source: MicrosoftDocs/SupportArticles-docs
    archivestatus-set-none.md, shared/specs/exchange-facts.json `archivestatus_unreliable`."""
    guid = str(mailbox.get("ArchiveGuid") or "").strip().strip("{}").lower()
    if not guid or guid == NO_ARCHIVE_GUID:
        return False
    if "ArchiveDatabase" in mailbox:
        return bool(mailbox.get("ArchiveDatabase"))
    return True


@dataclass
class CmdletOutcome:
    """The result of one cmdlet: objects written to the pipeline, warnings, or an error."""

    cmdlet: Cmdlet
    objects: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: ExchangeError | None = None
    request_id: str | None = None
    answered_at: str | None = None  # the service's Date header on the answer (its clock, not ours)

    @property
    def ok(self) -> bool:
        return self.error is None


class ExchangeError(Exception):
    """A cmdlet failed. `category` is the exception's short name, e.g.
    'ManagementObjectNotFoundException', 'ParameterBindingException'; `retryable` is set
    for throttling and transient transport failures (after the runner's own retries)."""

    def __init__(
        self,
        message: str,
        *,
        cmdlet: str = "",
        category: str = "",
        status: int | None = None,
        request_id: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.cmdlet = cmdlet
        self.category = category
        self.status = status
        self.request_id = request_id
        self.retryable = retryable

    @property
    def not_found(self) -> bool:
        return "ManagementObjectNotFound" in self.category or "couldn't be found" in self.message


class TransportError(Exception):
    """The service could not be reached or kept failing (connection, auth, TLS, retries exhausted)."""

    def __init__(self, message: str, *, status: int | None = None, auth: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.auth = auth


ThrottleListener = Callable[[float], None]  # called with the Retry-After seconds on each 429


class ExchangeRunner(Protocol):
    """Runs Exchange cmdlets. `side` is 'exchange-online', 'compliance' or 'on-premises'."""

    side: str

    async def invoke(self, cmdlet: Cmdlet) -> CmdletOutcome:
        """One cmdlet, every page of its output collected. Errors are in the outcome, not raised;
        TransportError is raised when the service can't be reached after retries."""
        ...

    def pages(self, cmdlet: Cmdlet, page_size: int = 1000) -> AsyncIterator[list[dict[str, Any]]]:
        """A Get- cmdlet's output a page at a time (bounded memory for 100,000 mailboxes).
        Raises ExchangeError if the cmdlet fails."""
        ...

    async def invoke_many(self, cmdlets: list[Cmdlet]) -> list[CmdletOutcome]:
        """Several cmdlets, results in order. REST sends them in $batch requests of 10;
        on-premises runs them one after another in the same runspace."""
        ...

    async def aclose(self) -> None: ...

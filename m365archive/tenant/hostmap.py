"""An httpx transport that sends requests for some real host names to another origin (a simulator).

A simulated tenant serves every service on one loopback origin, but the client must still derive
real host names (the Security & Compliance regional host, say) exactly as it does against Microsoft.
The simulator's discovery document carries a host map: `{"ps.compliance.protection.outlook.com":
"http://127.0.0.1:P"}` sends that host and every host under it (`nam12b.ps.compliance...`) to the
loopback origin, with the original name in the Host header (as `curl --resolve` would), so the
simulator can answer per host. Any other host goes out unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx


def mapped_origin(host: str, host_map: Mapping[str, str]) -> str | None:
    """The origin `host` is sent to: the entry for the longest suffix it matches, else None."""
    host = host.lower().rstrip(".")
    best: tuple[int, str] | None = None
    for suffix, origin in host_map.items():
        suffix = suffix.lower().rstrip(".")
        if (host == suffix or host.endswith("." + suffix)) and (best is None or len(suffix) > best[0]):
            best = (len(suffix), origin)
    return best[1] if best else None


def _rewrite(request: httpx.Request, host_map: Mapping[str, str]) -> None:
    origin = mapped_origin(request.url.host, host_map)
    if origin is None:
        return
    target = httpx.URL(origin)
    request.headers["Host"] = request.url.netloc.decode("ascii")
    request.url = request.url.copy_with(scheme=target.scheme, host=target.host, port=target.port)


class HostMapTransport(httpx.AsyncBaseTransport):
    """Async transport: mapped hosts go to their origin, the Host header keeps the real name."""

    def __init__(self, host_map: Mapping[str, str], inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.host_map = dict(host_map)
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _rewrite(request, self.host_map)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class SyncHostMapTransport(httpx.BaseTransport):
    """The same for synchronous clients (tests and one-off probes)."""

    def __init__(self, host_map: Mapping[str, str], inner: httpx.BaseTransport | None = None) -> None:
        self.host_map = dict(host_map)
        self._inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        _rewrite(request, self.host_map)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()

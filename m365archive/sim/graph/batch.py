"""Graph `$batch`: JSON batching with dependsOn, each item dispatched through the handler table."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from m365archive.sim.graph.core import (
    Ctx,
    GraphCore,
    GraphFail,
    Reply,
    _query,
    bad_request,
)

MAX_BATCH = 20


class BatchMixin(GraphCore):
    # -- $batch ----------------------------------------------------------------------------------
    def batch(self, ctx: Ctx) -> Reply:
        body = self.body_object(ctx)
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise bad_request("Invalid batch payload format.", "BadRequest")
        if len(requests) > MAX_BATCH:
            raise bad_request(f"The number of requests in a batch exceeds the limit of {MAX_BATCH}.", "BadRequest")
        by_id: dict[str, dict[str, Any]] = {}
        for item in requests:
            if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("id", "method", "url")):
                raise bad_request("Invalid batch payload format.", "BadRequest")
            if item["id"] in by_id:
                raise bad_request("Batch request contains duplicate request ids.", "BadRequest")
            by_id[item["id"]] = item
        for item in requests:
            for dep in item.get("dependsOn") or []:
                if dep not in by_id or dep == item["id"]:
                    raise bad_request(
                        f"Request with id '{item['id']}' depends on unknown request '{dep}'.", "BadRequest"
                    )
        results: dict[str, dict[str, Any]] = {}

        def execute(item: dict[str, Any], trail: tuple[str, ...]) -> dict[str, Any]:
            rid = item["id"]
            if rid in results:
                return results[rid]
            if rid in trail:
                raise bad_request("Batch requests contain a circular dependency.", "BadRequest")
            deps = [execute(by_id[d], (*trail, rid)) for d in item.get("dependsOn") or []]
            if any(not 200 <= d["status"] < 300 for d in deps):
                reply = self._fail_reply(
                    ctx,
                    GraphFail(
                        424,
                        "FailedDependency",
                        "The request could not be performed because of a failed dependency.",
                    ),
                )
            else:
                reply = self.sub_request(ctx, item)
            results[rid] = {
                "id": rid,
                "status": reply.status,
                "headers": {"Content-Type": "application/json", **reply.headers} if reply.body else dict(reply.headers),
                "body": reply.body,
            }
            if reply.body is None:
                results[rid].pop("body")
            return results[rid]

        for item in requests:
            execute(item, ())
        return Reply(200, {"responses": [results[item["id"]] for item in requests]})

    def sub_request(self, outer: Ctx, item: dict[str, Any]) -> Reply:
        method = item["method"].upper()
        parts = urlsplit(item["url"])
        path = unquote(parts.path)
        if not path.startswith("/"):
            path = "/" + path
        headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        ctx = Ctx(
            request=outer.request,
            method=method,
            path=path,
            params={},
            query=_query(parts.query),
            headers={**{"authorization": outer.headers.get("authorization", "")}, **headers},
            body=item.get("body"),
            base=outer.base,
        )
        if ctx.body is not None and "content-type" not in headers:
            return self._fail_reply(
                ctx,
                bad_request(
                    f"Write request id : {item['id']} does not contain Content-Type header or body.", "BadRequest"
                ),
            )
        if path == "/$batch":
            return self._fail_reply(ctx, bad_request("Nested batch requests are not supported.", "BadRequest"))
        found = self.match(method, path)
        if found is None:
            segment = path.strip("/").split("/")[0]
            return self._fail_reply(ctx, bad_request(f"Resource not found for the segment '{segment}'.", "BadRequest"))
        if isinstance(found, str):
            return self._fail_reply(
                ctx,
                GraphFail(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."),
            )
        handler, params = found
        ctx.params = params
        return self.run(handler, ctx)

"""Per-request bookkeeping: request id, access log line, request metrics.

Pure ASGI rather than BaseHTTPMiddleware, so streamed responses are timed to their last byte and
nothing is buffered.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders

from service.logs import request_id
from service.metrics import Metrics

access_log = logging.getLogger("archivist.access")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # anything else could forge log lines


class ObserveMiddleware:
    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        # Not reset afterwards: each request runs in its own task (its own context copy), and the
        # app's last-resort error handler logs after this middleware has returned.
        request_id.set(rid)
        status = 500  # if the app raises before answering, the error handler sends a 500
        started = time.perf_counter()

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append("X-Request-ID", rid)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            # The route template, not the path: ids in paths would explode the label set.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe_request(scope["method"], route, status, seconds)
            access_log.info("%s %s %d %.1f ms", scope["method"], scope["path"], status,
                            seconds * 1000, extra={"method": scope["method"], "path": scope["path"],
                                                   "route": route, "status": status,
                                                   "duration_ms": round(seconds * 1000, 1)})

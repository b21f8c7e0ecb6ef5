"""Request size limits, applied before any route parses a body."""

from __future__ import annotations

from service.errors import error_reply


class BodyLimitMiddleware:
    """Refuse (413) a request body over `max_bytes`, before any route parses it.

    Multipart uploads pass through: /v1/documents limits them by max_file_mb.  A declared
    Content-Length over the limit is refused without reading; otherwise the body is read up to
    the limit and replayed to the app.
    """

    _METHODS = ("POST", "PUT", "PATCH")

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in self._METHODS:
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if headers.get(b"content-type", b"").lower().startswith(b"multipart/"):
            return await self.app(scope, receive, send)
        try:
            declared = int(headers.get(b"content-length", b"0"))
        except ValueError:
            declared = 0
        if declared > self.max_bytes:
            return await self._refuse(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                return await self._refuse(scope, receive, send)
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope, receive, send) -> None:
        limit_mb = self.max_bytes / 1e6
        message = f"The request body is too large (over {limit_mb:g} MB)."
        hint = "Send a smaller request; upload files with multipart POST /v1/documents."
        await error_reply(scope["path"], 413, message, hint)(scope, receive, send)

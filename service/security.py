"""What keeps a web page in someone's browser from driving a server on their laptop.

A page on any site can make the browser send requests to http://127.0.0.1:8000: it cannot read
the replies (no CORS headers are ever sent), but a form POST or an upload still arrives, and with
no API keys every request is a local admin.  Two checks stop that, before any route runs:

- **Host.**  The `Host` header must name this server: a loopback name, the bound address, or one
  listed in ARCHIVIST_ALLOWED_HOSTS.  A DNS-rebinding page (`http://evil.example:8000` resolved to
  127.0.0.1) sends `Host: evil.example:8000` and is refused, so it cannot read replies either.
- **Origin.**  A state-changing request (POST, PUT, PATCH, DELETE) that a browser marks as coming
  from another origin (`Origin`, or `Sec-Fetch-Site: cross-site`) is refused unless that origin is
  listed in ARCHIVIST_ALLOWED_ORIGINS.  Requests without those headers (curl, SDKs, scripts) are
  not from a web page and pass.

`curl -d '{...}'` labels its JSON body form-encoded; such bodies (and bodies with no Content-Type)
are read as JSON, but only when the request is not cross-site: a browser can send a cross-site
form without asking anyone, never a cross-site JSON request.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Iterable
from urllib.parse import urlsplit

from service.errors import error_reply

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_RELABEL = (b"", b"application/x-www-form-urlencoded")
_WILDCARDS = ("", "0.0.0.0", "::")


def _split_host(value: str, scheme: str) -> tuple[str, int | None]:
    """('example.org', 8000) from 'example.org:8000', '[::1]:8000' or 'EXAMPLE.org.'."""
    parts = urlsplit(f"{scheme}://{value}")
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port that is not a number
        return "", None
    return (parts.hostname or "").rstrip("."), port


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def allowed_hosts(bind_host: str, extra: Iterable[str]) -> frozenset[str] | None:
    """The host names requests may address, or None for any ('*' in `extra`).

    Loopback names and the bound address always; bound to every interface, also this machine's
    own names (IP literals always pass then: rebinding needs a name the attacker controls)."""
    names = {name.strip().lower().rstrip(".") for name in extra if name.strip()}
    if "*" in names:
        return None
    names |= LOOPBACK_NAMES
    bind = bind_host.strip("[]").lower()
    if bind in _WILDCARDS:
        for own in {socket.gethostname(), socket.getfqdn()}:
            names.add(own.lower())
    else:
        names.add(bind)
    return frozenset(names)


class BrowserGuard:
    """Pure ASGI middleware: the Host and Origin checks, and the JSON relabelling of form bodies."""

    def __init__(self, app, hosts: frozenset[str] | None, origins: Iterable[str] = (),
                 wildcard_bind: bool = False) -> None:
        self.app = app
        self.hosts = hosts
        self.origins = frozenset(o.rstrip("/").lower() for o in origins if o.strip())
        self.wildcard_bind = wildcard_bind

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        scheme = scope.get("scheme", "http")
        host_header = headers.get("host", "")
        host, _ = _split_host(host_header, scheme)
        if not self._host_ok(host):
            return await _refuse(scope, receive, send, 400,
                                 f"This server does not answer to the host name {host_header!r}.",
                                 "Use http://127.0.0.1 or http://localhost with the server's port, "
                                 "or add the name to ARCHIVIST_ALLOWED_HOSTS (a DNS name pointing "
                                 "here from a web page is how DNS-rebinding attacks work).")
        cross_site = self._cross_site(headers, scheme, host_header)
        if cross_site and scope["method"] in _UNSAFE_METHODS:
            origin = headers.get("origin") or "another site"
            return await _refuse(scope, receive, send, 403,
                                 f"Refused a {scope['method']} request sent by a web page from "
                                 f"{origin}: only this server's own pages may change things here.",
                                 "Send the request without a browser (curl, an SDK), or add that "
                                 "origin to ARCHIVIST_ALLOWED_ORIGINS if you trust it.")
        if scope["method"] == "POST" and not cross_site:
            _json_unless_labelled(scope, headers)
        await self.app(scope, receive, send)

    def _host_ok(self, host: str) -> bool:
        if self.hosts is None:
            return True
        return host in self.hosts or (self.wildcard_bind and _is_ip(host))

    def _cross_site(self, headers: dict[str, str], scheme: str, host_header: str) -> bool:
        """Whether a browser says the request comes from a page of another origin."""
        origin = headers.get("origin")
        if origin is None:
            return headers.get("sec-fetch-site") in ("cross-site", "same-site")
        normal = origin.rstrip("/").lower()
        if normal in self.origins:
            return False
        if normal == "null":  # sandboxed frames, file:// pages: never this server's own page
            return True
        parts = urlsplit(normal)
        if not parts.scheme or not parts.netloc:
            return True
        # Same origin: the page was served under the very host (and port) the request names.
        # Compared by (name, port), so a TLS proxy in front (Origin https://, scope http) agrees.
        return _split_host(parts.netloc, parts.scheme) != _split_host(host_header.lower(), parts.scheme)


def _json_unless_labelled(scope, headers: dict[str, str]) -> None:
    """Label the body application/json when it came unlabelled or form-encoded (curl -d);
    multipart uploads and explicit types pass untouched.  In place: the middleware outside this
    one must see the route the router writes into this same scope."""
    ctype = headers.get("content-type", "").split(";")[0].strip().lower().encode("latin-1")
    if ctype in _RELABEL:
        rest = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-type"]
        scope["headers"] = rest + [(b"content-type", b"application/json")]


async def _refuse(scope, receive, send, status: int, message: str, hint: str) -> None:
    await error_reply(scope["path"], status, message, hint)(scope, receive, send)

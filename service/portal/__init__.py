"""The web portal: an ask page, a library page, an audit page (admins) and a login form, served
by the API app itself.

Plain HTML pages from `templates/` (one shared layout) and vanilla JS/CSS from `static/` (native
ES modules in `static/js/`, `main.js` the entry), all inside this package: no build step, nothing
fetched from anywhere but this server.  The pages call the public HTTP API with fetch(); the
browser keeps an API key, if any, in sessionStorage.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from string import Template

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

HERE = Path(__file__).parent
STATIC_URL = "/portal/static"

# Only this server: no CDN, no inline script, no third-party anything.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

PAGES = {  # path -> (template, page id, English title; the script translates on load)
    "/": ("ask.html", "ask", "Ask"),
    "/library": ("library.html", "library", "Library"),
    "/login": ("login.html", "login", "Sign in"),
    "/audit": ("audit.html", "audit", "Audit"),  # admins
}


@lru_cache(maxsize=None)
def render(template: str, page: str, title: str, version: str) -> str:
    layout = Template((HERE / "templates" / "layout.html").read_text(encoding="utf-8"))
    body = (HERE / "templates" / template).read_text(encoding="utf-8")
    return layout.substitute(page=page, title=title, body=body, static=STATIC_URL, version=version)


class PortalFiles(StaticFiles):
    """The static files, revalidated on every load (an ETag makes that a 304), scripts always as
    text/javascript.  The layout's `js/main.js?v=VERSION` changes with each release, but the modules
    it imports have no version in their URLs: cached without revalidation, an old one could meet a
    new one after an upgrade.  A module script served with a non-JavaScript type is refused, and
    some hosts' MIME tables give .js one (text/plain in some Windows registries)."""

    def file_response(self, full_path, *args, **kwargs) -> Response:
        response = super().file_response(full_path, *args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        if str(full_path).endswith(".js") and "content-type" in response.headers:
            response.headers["Content-Type"] = "text/javascript; charset=utf-8"
        return response


def mount(app: FastAPI) -> None:
    """Add the portal's pages and static files to `app`."""
    app.mount(STATIC_URL, PortalFiles(directory=HERE / "static"), name="portal-static")

    def page_route(template: str, page: str, title: str):
        def handler() -> HTMLResponse:
            return HTMLResponse(render(template, page, title, app.version), headers=SECURITY_HEADERS)
        handler.__name__ = f"portal_{page}"
        return handler

    for path, (template, page, title) in PAGES.items():
        app.get(path, include_in_schema=False, response_class=HTMLResponse)(page_route(template, page, title))

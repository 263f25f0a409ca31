"""``/`` (the dashboard), ``/assets/…`` (its files, read once from the package) and
``/login`` (where a browser gives API_TOKEN once, for a session cookie).

Every page response forbids what the page does not do (Content-Security-Policy: scripts and
styles from this server only, no frames, no inline script), so that a text that slipped
through as markup still could not run."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Final
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import RedirectResponse

from signalsmith.query.access import SESSION_COOKIE, SESSION_S, ApiAccess, Credentials

_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".LICENSE": "text/plain; charset=utf-8",
}
_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_HEADERS: Final = {
    "Content-Security-Policy": _POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
MAX_LOGIN_BYTES: Final = 4_096
_GET = ["GET", "HEAD"]


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def load_assets() -> dict[str, Asset]:
    """Every file under ``web/assets`` by its path there (``app.js``, ``vendor/…``)."""
    found: dict[str, Asset] = {}
    root = resources.files("signalsmith.web") / "assets"
    pending = [(root, "")]
    while pending:
        folder, prefix = pending.pop()
        for item in folder.iterdir():
            name = prefix + item.name
            if item.is_dir():
                pending.append((item, name + "/"))
                continue
            suffix = "." + item.name.rsplit(".", 1)[-1]
            body = item.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            found[name] = Asset(body, _TYPES.get(suffix, "application/octet-stream"), etag)
    return found


def web_router(access: ApiAccess) -> APIRouter:
    """The page, its assets and the sign-in; behind ``access`` like the API (the assets too:
    on a server that asks for a token, nothing is served to a stranger but the sign-in)."""
    assets = load_assets()
    router = APIRouter(include_in_schema=False)

    @router.api_route("/", methods=_GET)
    async def index(request: Request, credentials: Credentials) -> Response:
        if not _allowed(access, request, credentials):  # the sign-in (200: a page, no data)
            return _page(assets["login.html"])
        return _page(assets["index.html"])

    @router.api_route("/assets/{name:path}", methods=_GET)
    async def asset(name: str, request: Request, credentials: Credentials) -> Response:
        found = assets.get(name)
        public = name.startswith("login.") or name == "favicon.svg"
        if found is None or not (public or _allowed(access, request, credentials)):
            raise HTTPException(404, "no such file")
        return _file(found, request)

    @router.post("/login")
    async def login(request: Request) -> Response:
        """A form's ``token``: right, a session cookie and back to ``/``; wrong, the sign-in
        again with a note. The token is never echoed."""
        if not access.accepts_token(await _form_token(request)):
            return RedirectResponse("/?signin=failed", 303, _HEADERS)
        answer = RedirectResponse("/", 303, _HEADERS)
        answer.set_cookie(
            SESSION_COOKIE,
            access.session(),
            max_age=SESSION_S,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return answer

    @router.get("/logout")
    async def logout() -> Response:
        """Ends this browser's session (the cookie is dropped) and goes back to ``/``."""
        answer = RedirectResponse("/", 303, _HEADERS)
        answer.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return answer

    return router


def _allowed(access: ApiAccess, request: Request, credentials: Credentials | None) -> bool:
    try:
        access.check(credentials, request.cookies.get(SESSION_COOKIE), request.method)
    except HTTPException:
        return False
    return True


def _page(asset: Asset, status: int = 200) -> Response:
    headers = {**_HEADERS, "Cache-Control": "no-store"}
    return Response(asset.body, status, headers, media_type=asset.media_type)


def _file(asset: Asset, request: Request) -> Response:
    """An asset, or 304 when the browser holds this version (revalidated on every use)."""
    headers = {**_HEADERS, "ETag": asset.etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, headers=headers, media_type=asset.media_type)


async def _form_token(request: Request) -> str:
    """The ``token`` field of a small urlencoded form (413 beyond ``MAX_LOGIN_BYTES``)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LOGIN_BYTES:
            raise HTTPException(413, "the sign-in form is a token, no more")
    try:
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=4)
    except ValueError:  # more fields than a sign-in has
        return ""
    return (fields.get("token") or [""])[0]

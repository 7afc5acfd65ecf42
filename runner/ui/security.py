"""Who may talk to `pipe ui`, as ASGI middleware around the application:

- the Host header names the address the server is bound to, port included (`localhost`,
  `127.0.0.1` and `[::1]` are one another's aliases only on loopback), so a DNS-rebound name is
  refused (Starlette's TrustedHostMiddleware checks the name, `RequestCheck` the port: 421);
- a state-changing request (anything but GET/HEAD) comes from the UI's own pages: an `Origin` or
  `Sec-Fetch-Site` saying otherwise is refused (403), and it carries the session's CSRF token (form
  field `csrf` or header `X-Pipe-CSRF`), an HMAC of the session cookie under a key made at start;
- with a token (any address but loopback), `TokenCheck` asks for it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
SAFE_METHODS = frozenset({"GET", "HEAD"})
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-pipe-csrf"
MAX_BODY = 64 * 1024  # bytes of a request body (RequestBodyLimitMiddleware)


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or address, IPv6 without brackets) is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str) -> list[str]:
    """The Host names (as TrustedHostMiddleware compares them) a server bound to `host` answers."""
    if is_loopback(host):
        return list(LOOPBACK_NAMES)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return [host.lower()]
    if address.is_unspecified:  # every interface: any name, but a token is required there
        return ["*"]
    return [f"[{address}]" if address.version == 6 else str(address)]


class Sessions:
    """Session ids (a cookie per port) and their CSRF tokens: HMAC-SHA256 under a key made at start."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    @staticmethod
    def cookie(port: int) -> str:
        """The cookie's name; cookies ignore ports, so two servers on one host must not share it."""
        return f"pipe_session_{port}"

    @staticmethod
    def new() -> str:
        return secrets.token_urlsafe(32)

    def token(self, session: str) -> str:
        """The CSRF token the pages of `session` embed."""
        return hmac.new(self._key, session.encode(), hashlib.sha256).hexdigest()

    def valid(self, session: str, given: str) -> bool:
        return bool(session) and hmac.compare_digest(self.token(session).encode(), given.encode())


def bound_port(scope: Scope, port: int) -> int:
    """The port the server answers on: `port`, or the one the connection came in on when 0."""
    server = scope.get("server")
    return port or (int(server[1]) if server and server[1] is not None else 0)


class RequestCheck:
    """The Host header's port, the origin of state-changing requests, and their CSRF token."""

    def __init__(self, app: ASGIApp, port: int, sessions: Sessions) -> None:
        self.app = app
        self.port = port
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        port = bound_port(scope, self.port)
        try:
            given_port = urlsplit("//" + host).port or (443 if scope["scheme"] == "https" else 80)
        except ValueError:
            given_port = -1
        if given_port != port:
            await _refuse(scope, receive, send, 421, f"this server answers to port {port} only")
            return
        if scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        site, origin = headers.get("sec-fetch-site"), headers.get("origin")
        if (site is not None and site != "same-origin") or (
            origin is not None and origin != f"{scope['scheme']}://{host}"
        ):
            await _refuse(scope, receive, send, 403, "a cross-origin request cannot change anything")
            return
        body = await _body(receive)  # bounded by RequestBodyLimitMiddleware, outside this one
        given = headers.get(CSRF_HEADER) or _form_value(headers, body, CSRF_FIELD)
        session = Request(scope).cookies.get(Sessions.cookie(port), "")
        if not self.sessions.valid(session, given):
            await _refuse(scope, receive, send, 403, "the CSRF token is missing or wrong; reload the page")
            return
        await self.app(scope, _replay(body, receive), send)


class TokenCheck:
    """Refuse requests without the token (when there is one); `?token=` sets a cookie for the browser."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        given = (
            request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            or request.query_params.get("token")
            or request.cookies.get("pipe_token")
            or ""
        )
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            await _refuse(scope, receive, send, 401, "a token is needed (Authorization: Bearer TOKEN)")
            return
        if request.query_params.get("token"):
            response = RedirectResponse(str(request.url.remove_query_params("token")), status_code=303)
            response.set_cookie("pipe_token", self.token, httponly=True, samesite="strict")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
    await JSONResponse({"error": message}, status_code=status)(scope, receive, send)


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body already read, then hands over to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _form_value(headers: Headers, body: bytes, name: str) -> str:
    if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return ""
    values: dict[str, Any] = parse_qs(body.decode("utf-8", "replace"), max_num_fields=50)
    return str(values.get(name, [""])[-1])

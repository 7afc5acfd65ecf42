"""The web application of `pipe serve` (Starlette, as `pipe ui`): GitHub's webhooks in, runs out.

    POST /webhook (also POST /)  a delivery: 401 unless X-Hub-Signature-256 signs the raw body
                                 with the webhook secret (nothing is read or started before);
                                 400 without X-GitHub-Event / X-GitHub-Delivery or a JSON object;
                                 413 over MAX_BODY bytes; then runner/serve/dispatch.py answers
                                 (202 started / queued, 200 duplicate / merged / ignored /
                                 archived). A body seen before (its SHA-256) is a duplicate
                                 whatever X-GitHub-Delivery says: that header is not signed.
    GET /healthz                 200 {"status": "ok"}

`ping` (sent when a hook is created) is answered "pong". The dispatcher touches the store and
starts processes, so it runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import hashlib
import json
import re

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from runner.serve.dispatch import Dispatcher
from runner.serve.signature import verify

MAX_BODY = 5 * 1024 * 1024  # bytes: GitHub caps payloads at 25 MB, but none pipe acts on comes near 5
_DELIVERY = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]{0,79}")  # a UUID as GitHub sends it (a file name below)
_EVENT = re.compile(r"[a-z_]{1,64}")


class WebhookApp:
    """The application for webhook secret `secret` (bytes); deliveries go to `dispatcher`."""

    def __init__(self, secret: bytes, dispatcher: Dispatcher) -> None:
        self.secret = secret
        self.dispatcher = dispatcher

    def application(self) -> Starlette:
        """The ASGI application (routes above, bodies over MAX_BODY refused with 413)."""
        routes = [
            Route("/webhook", self.webhook, methods=["POST"]),
            Route("/", self.webhook, methods=["POST"]),
            Route("/healthz", self.healthz, methods=["GET"]),
        ]
        return Starlette(routes=routes, middleware=[Middleware(RequestBodyLimitMiddleware, max_body_size=MAX_BODY)])

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def webhook(self, request: Request) -> Response:
        """One delivery (see the module docstring)."""
        try:
            body = await request.body()
        except ClientDisconnect:
            return Response(status_code=400)
        if not verify(self.secret, body, request.headers.get("X-Hub-Signature-256")):
            return JSONResponse({"status": "refused", "reason": "bad or missing X-Hub-Signature-256"}, 401)
        event = request.headers.get("X-GitHub-Event", "")
        delivery = request.headers.get("X-GitHub-Delivery", "")
        if not _EVENT.fullmatch(event) or not _DELIVERY.fullmatch(delivery):
            return JSONResponse({"status": "refused", "reason": "bad X-GitHub-Event or X-GitHub-Delivery"}, 400)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return JSONResponse({"status": "refused", "reason": "the body is not a JSON object"}, 400)
        if event == "ping":
            return JSONResponse({"status": "pong"})
        digest = hashlib.sha256(body).hexdigest()  # the signed part: a replay under a new delivery id
        reply = await run_in_threadpool(self.dispatcher.handle, delivery, event, payload, digest)
        return JSONResponse(reply.body, reply.status)

"""The web application of `pipe ui` (Starlette): pages rendered on the server from the store, live
updates as Server-Sent Events carrying re-rendered HTML fragments (no front-end build step), and
actions (approve, reject, rollback) run as `pipe` subprocesses so the server stays responsive.

Security: loopback by default; any other address needs a token (`Authorization: Bearer TOKEN`, or
`?token=` once, which sets a cookie). With `read_only` every action is refused (403) and hidden.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from runner.errors import PipeError
from runner.rollback import MODES, format_plan, plan_rollback
from runner.store import Store
from runner.ui.views import pipelines, run_detail, runs_list

TEMPLATES = Path(__file__).resolve().parent / "templates"
POLL_SECONDS = 0.5


class UI:
    """The application's state: where the store is, and what is allowed."""

    def __init__(self, state_dir: Path, *, read_only: bool = False, token: str | None = None) -> None:
        self.state_dir = state_dir
        self.read_only = read_only
        self.token = token
        self.jinja = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
        self.actions: list[subprocess.Popen[bytes]] = []

    def store(self) -> Store:
        return Store(self.state_dir)

    def render(self, template: str, **context: Any) -> str:
        return self.jinja.get_template(template).render(read_only=self.read_only, **context)

    # ---- pages -------------------------------------------------------------------------------

    async def runs_page(self, request: Request) -> Response:
        status, pipeline = request.query_params.get("status"), request.query_params.get("pipeline")
        store = self.store()
        try:
            rows = runs_list(store, status, pipeline)
            names = pipelines(store)
        finally:
            store.close()
        rows_html = self.render("_runs_rows.html", runs=rows)
        html = self.render(
            "runs.html",
            rows_html=rows_html,
            version=version(rows_html),
            status=status or "",
            pipeline=pipeline or "",
            pipelines=names,
            query=request.url.query,
        )
        return HTMLResponse(html)

    async def run_page(self, request: Request) -> Response:
        store = self.store()
        try:
            detail = run_detail(store, self.state_dir, request.path_params["run_id"])
        except PipeError as error:
            return HTMLResponse(self.render("error.html", message=str(error)), status_code=404)
        finally:
            store.close()
        live = self.render("_run_live.html", **detail)
        return HTMLResponse(self.render("run.html", live_html=live, version=version(live), **detail))

    # ---- JSON and live updates ---------------------------------------------------------------

    async def runs_json(self, request: Request) -> Response:
        store = self.store()
        try:
            return JSONResponse(
                runs_list(store, request.query_params.get("status"), request.query_params.get("pipeline"))
            )
        finally:
            store.close()

    async def run_json(self, request: Request) -> Response:
        store = self.store()
        try:
            return JSONResponse(run_detail(store, self.state_dir, request.path_params["run_id"]))
        except PipeError as error:
            return JSONResponse({"error": str(error)}, status_code=404)
        finally:
            store.close()

    def _stream(self, render: Callable[[Store], tuple[str, bool]], since: str | None) -> StreamingResponse:
        """Send `render()`'s HTML whenever it changes, until it says it is final; `since` is the
        version (see `version`) the page already shows, not sent again."""

        async def events() -> AsyncIterator[str]:
            last = since
            while True:
                store = self.store()
                try:
                    html, final = render(store)
                finally:
                    store.close()
                if version(html) != last:
                    last = version(html)
                    yield "data: " + json.dumps({"html": html}) + "\n\n"
                if final:
                    yield "event: done\ndata: {}\n\n"
                    return
                await asyncio.sleep(POLL_SECONDS)

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    async def runs_events(self, request: Request) -> Response:
        status, pipeline = request.query_params.get("status"), request.query_params.get("pipeline")
        return self._stream(
            lambda store: (self.render("_runs_rows.html", runs=runs_list(store, status, pipeline)), False),
            request.query_params.get("since"),
        )

    async def run_events(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]

        def render(store: Store) -> tuple[str, bool]:
            detail = run_detail(store, self.state_dir, run_id)
            return self.render("_run_live.html", **detail), detail["run"]["finished"]

        return self._stream(render, request.query_params.get("since"))

    # ---- actions -----------------------------------------------------------------------------

    async def rollback_plan(self, request: Request) -> Response:
        mode, steps, to = _rollback_options(request.query_params)
        store = self.store()
        try:
            plan = plan_rollback(store, store.run(request.path_params["run_id"]).id, mode, steps=steps, to=to)
        except PipeError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        finally:
            store.close()
        return JSONResponse({"plan": format_plan(plan), "changes": len(plan.changes)})

    async def act(self, request: Request) -> Response:
        """approve, reject or rollback: started as a `pipe` subprocess; 202 with its command."""
        if self.read_only:
            return JSONResponse({"error": "pipe ui runs read-only"}, status_code=403)
        action, run_id = request.path_params["action"], request.path_params["run_id"]
        form = {key: values[-1] for key, values in parse_qs((await request.body()).decode()).items()}
        argv = [sys.executable, "-m", "runner", action, run_id, "--state-dir", str(self.state_dir)]
        if action in ("approve", "reject") and form.get("comment"):
            argv += ["--comment", str(form["comment"])]
        if action == "rollback":
            mode, steps, to = _rollback_options(form)
            argv += {"hard": ["--hard"], "soft": ["--soft"], "steps": ["--steps", str(steps)], "to": ["--to", str(to)]}[
                mode
            ]
        self.actions = [process for process in self.actions if process.poll() is None]  # reap finished ones
        log = self.state_dir / "ui-actions.log"
        with open(log, "ab") as output:
            process = subprocess.Popen(
                argv, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self.actions.append(process)
        if "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(f"/runs/{run_id}", status_code=303)
        return JSONResponse({"started": argv[3:5], "pid": process.pid}, status_code=202)

    def wait_for_actions(self, timeout: float = 60.0) -> None:
        """Wait for the actions started from the page (when the server stops)."""
        for process in self.actions:
            process.wait(timeout=timeout)
        self.actions.clear()

    # ---- the application ---------------------------------------------------------------------

    def application(self) -> Starlette:
        routes = [
            Route("/", self.runs_page),
            Route("/runs/{run_id}", self.run_page),
            Route("/api/runs", self.runs_json),
            Route("/api/runs/events", self.runs_events),
            Route("/api/runs/{run_id}", self.run_json),
            Route("/api/runs/{run_id}/events", self.run_events),
            Route("/api/runs/{run_id}/rollback-plan", self.rollback_plan),
            Route("/api/runs/{run_id}/{action:str}", self.act, methods=["POST"]),
        ]
        app = Starlette(routes=routes)
        app.add_middleware(_TokenCheck, token=self.token)
        return app


def version(html: str) -> str:
    """A short fingerprint of a fragment, so a stream does not resend what a page shows."""
    return hashlib.sha256(html.encode()).hexdigest()[:16]


def _rollback_options(values: Any) -> tuple[str, int | None, str | None]:
    mode = str(values.get("mode") or "hard")
    if mode not in MODES:
        mode = "hard"
    steps = int(values.get("steps") or 1) if mode == "steps" else None
    to = str(values.get("to") or "") if mode == "to" else None
    return mode, steps, to


class _TokenCheck:
    """Refuse requests without the token (when there is one); `?token=` sets a cookie for the browser."""

    def __init__(self, app: Callable[..., Awaitable[None]], token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
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
            await JSONResponse({"error": "a token is needed (Authorization: Bearer TOKEN)"}, status_code=401)(
                scope, receive, send
            )
            return
        if request.query_params.get("token"):
            response = RedirectResponse(str(request.url.remove_query_params("token")), status_code=303)
            response.set_cookie("pipe_token", self.token, httponly=True, samesite="strict")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

"""The web application of `pipe ui` (Starlette): pages rendered on the server from the store, live
updates as Server-Sent Events carrying re-rendered HTML fragments (no front-end build step), and
actions (approve, reject, rollback) run as `pipe` subprocesses so the server stays responsive.

Security (runner/ui/security.py): the Host header must name the bound address and port; every
POST must come from the UI's own pages (Origin / Sec-Fetch-Site) and carry the session's CSRF
token; any address but loopback needs a token. Actions are an allow-list of fixed command lines
(runner/ui/actions.py). With `read_only` every action is refused (403) and hidden. Logs stream from
an offset in bounded chunks (runner/ui/logs.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import subprocess
from collections.abc import AsyncIterator, Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import jinja2
import markupsafe
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from runner.changes.rollback import format_plan, plan_rollback
from runner.errors import PipeError
from runner.statedir import StateDir
from runner.store import Store
from runner.terminal import printable
from runner.ui.actions import ACTIONS, ActionRefused, action_argv, find_run, rollback_options
from runner.ui.logs import follow_log, read_chunk, read_tail
from runner.ui.query import Filters
from runner.ui.security import MAX_BODY, RequestCheck, Sessions, TokenCheck, allowed_hosts, bound_port
from runner.ui.threadview import thread_page, threads_page
from runner.ui.views import live_attempt, run_detail, runs_page

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"  # vendored libraries: scripts/vendor-ui.sh
POLL_SECONDS = 0.5
Spawn = Callable[[list[str]], None]
_RESUME_AT = re.compile(r"([0-9]{1,12}):([0-9]{1,15})")  # Last-Event-ID of the log stream: ATTEMPT:OFFSET
_NUMBER = re.compile(r"[0-9]{1,15}")


class UI:
    """The application's state: where the store is, the address it is served on (`port` 0: the
    port the connection came in on, i.e. the one the server is bound to), and what is allowed.
    `spawn(argv)` starts an action's command line (default: a `pipe` subprocess kept in `actions`,
    its output appended to ui-actions.log). `fleet()`, given when a broker is configured, returns
    what the workers page shows (runner.workers.status.fleet_status's shape)."""

    def __init__(
        self,
        state_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        read_only: bool = False,
        token: str | None = None,
        spawn: Spawn | None = None,
        fleet: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.host = host
        self.port = port
        self.read_only = read_only
        self.token = token
        self.spawn: Spawn = spawn or self._spawn
        self.fleet = fleet
        self.sessions = Sessions()
        self.jinja = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, finalize=_displayed)
        self.actions: list[subprocess.Popen[bytes]] = []

    def store(self) -> Store:
        return Store(self.state_dir)

    def render(self, template: str, **context: Any) -> str:
        return self.jinja.get_template(template).render(read_only=self.read_only, **context)

    # ---- pages -------------------------------------------------------------------------------

    def _page(self, request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
        """An HTML page with the session's CSRF token in its forms; starts a session when none."""
        cookie = Sessions.cookie(bound_port(request.scope, self.port))
        session = request.cookies.get(cookie) or Sessions.new()
        html = self.render(template, csrf=self.sessions.token(session), **context)
        response = HTMLResponse(html, status_code=status_code)
        if request.cookies.get(cookie) != session:
            response.set_cookie(cookie, session, httponly=True, samesite="strict")
        return response

    async def runs_page(self, request: Request) -> Response:
        filters = _filters(request)
        listing = runs_page(self.state_dir, filters)
        rows_html = self.render("_runs_rows.html", runs=listing["runs"])
        return self._page(
            request,
            "runs.html",
            rows_html=rows_html,
            version=version(rows_html),
            filters=filters,
            listing=listing,
            query=_query(filters, filters.page),
            previous=_query(filters, filters.page - 1) if filters.page > 1 else None,
            next=_query(filters, filters.page + 1) if filters.page < listing["pages"] else None,
        )

    async def run_page(self, request: Request) -> Response:
        store = self.store()
        try:
            detail = run_detail(store, self.state_dir, request.path_params["run_id"])
            live = live_attempt(store, store.run(detail["run"]["id"]))
            top_steps = [s.step_id for s in store.steps(detail["run"]["id"]) if s.iteration == 0]
        except PipeError as error:
            return self._page(request, "error.html", 404, message=str(error))
        finally:
            store.close()
        log = None
        if live is not None:
            text, offset = read_tail(live.log_path) if live.log_path else ("", 0)
            log = {"step": live.step_id, "attempt": live.id, "text": text, "offset": offset}
        fragment = self.render("_run_live.html", **detail)
        return self._page(
            request,
            "run.html",
            live_html=fragment,
            version=version(fragment),
            **{**detail, "log": log},
            top_steps=top_steps,
        )

    async def threads_page(self, request: Request) -> Response:
        store = self.store()
        try:
            listing = threads_page(store, request.query_params.get("state", ""))
        finally:
            store.close()
        return self._page(request, "threads.html", **listing)

    async def workers_page(self, request: Request) -> Response:
        """The live workers with their runs' heartbeats, the queues' depths and the runs waiting to
        be taken over; without a broker, says there is none."""
        fleet = dict(await run_in_threadpool(self.fleet)) if self.fleet is not None else None
        return self._page(request, "workers.html", fleet=fleet)

    async def workers_json(self, request: Request) -> Response:
        fleet = dict(await run_in_threadpool(self.fleet)) if self.fleet is not None else None
        return JSONResponse(fleet if fleet is not None else {"error": "no broker (PIPE_BROKER_URL) configured"})

    async def thread_page(self, request: Request) -> Response:
        store = self.store()
        try:
            detail = thread_page(store, request.path_params["thread_id"])
        except PipeError as error:
            return self._page(request, "error.html", 404, message=str(error))
        finally:
            store.close()
        return self._page(request, "thread.html", **detail)

    async def thread_json(self, request: Request) -> Response:
        store = self.store()
        try:
            return JSONResponse(thread_page(store, request.path_params["thread_id"]))
        except PipeError as error:
            return JSONResponse({"error": str(error)}, status_code=404)
        finally:
            store.close()

    # ---- JSON and live updates ---------------------------------------------------------------

    async def runs_json(self, request: Request) -> Response:
        return JSONResponse(runs_page(self.state_dir, _filters(request)))

    async def attempt_log(self, request: Request) -> Response:
        """Up to logs.CHUNK bytes of one attempt's log from `offset`, as JSON {step, attempt, text,
        offset (after it), size, ended}; the page asks again until offset reaches size."""
        offset = request.query_params.get("offset", "0")
        if not _NUMBER.fullmatch(offset) or not _NUMBER.fullmatch(request.path_params["attempt"]):
            return JSONResponse({"error": "attempt and offset are whole numbers"}, status_code=400)
        store = self.store()
        try:
            run_id = find_run(store, request.path_params["run_id"]).id
            wanted = int(request.path_params["attempt"])
            attempt = next((a for a in store.attempts(run_id) if a.id == wanted), None)
        except ActionRefused as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)
        finally:
            store.close()
        if attempt is None:
            return JSONResponse({"error": f"run {run_id} has no attempt {wanted}"}, status_code=404)
        ended = attempt.finished_at is not None
        try:
            text, after, size = (
                read_chunk(attempt.log_path, int(offset), final=ended) if attempt.log_path else ("", 0, 0)
            )
        except OSError:
            return JSONResponse({"error": "the log is not a regular file"}, status_code=404)
        return JSONResponse(
            {
                "step": attempt.step_id,
                "attempt": attempt.id,
                "text": text,
                "offset": after,
                "size": size,
                "ended": ended,
            }
        )

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
        filters = _filters(request)
        return self._stream(
            lambda store: (self.render("_runs_rows.html", runs=runs_page(self.state_dir, filters)["runs"]), False),
            request.query_params.get("since"),
        )

    async def run_events(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]

        def render(store: Store) -> tuple[str, bool]:
            detail = run_detail(store, self.state_dir, run_id)
            return self.render("_run_live.html", **detail), detail["run"]["finished"]

        return self._stream(render, request.query_params.get("since"))

    async def log_events(self, request: Request) -> Response:
        """The newest attempt's log as Server-Sent Events, from a byte offset: each event carries
        at most logs.CHUNK bytes as text (`text`, `offset` after it, `attempt`, `step`) and its id
        `ATTEMPT:OFFSET`, so a reconnecting EventSource goes on where it stopped. When that attempt
        ends and another starts, the stream follows the new one from 0; `done` when the run ends.
        Query: `attempt` (an attempt id; default the newest) and `offset` (default 0)."""
        store = self.store()
        try:
            run_id = find_run(store, request.path_params["run_id"]).id
        except ActionRefused as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)
        finally:
            store.close()
        resume = _RESUME_AT.fullmatch(request.headers.get("last-event-id", ""))
        given = (
            (resume.group(1), resume.group(2))
            if resume
            else (
                request.query_params.get("attempt", "0"),
                request.query_params.get("offset", "0"),
            )
        )
        if not all(_NUMBER.fullmatch(value) for value in given):
            return JSONResponse({"error": "attempt and offset are whole numbers"}, status_code=400)
        return StreamingResponse(
            follow_log(self.store, run_id, int(given[0]), int(given[1]), POLL_SECONDS),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store"},
        )

    # ---- actions -----------------------------------------------------------------------------

    async def rollback_plan(self, request: Request) -> Response:
        store = self.store()
        try:
            run_id = find_run(store, request.path_params["run_id"]).id
            mode, steps, to = rollback_options(store, run_id, request.query_params)
            plan = plan_rollback(store, run_id, mode, steps=steps, to=to)
        except ActionRefused as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)
        except PipeError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        finally:
            store.close()
        return JSONResponse({"plan": format_plan(plan), "changes": len(plan.changes)})

    async def act(self, request: Request, action: str) -> Response:
        """An allowed action (approve, reject, rollback, resume) started as a fixed `pipe` command line; 202.
        The CSRF token and origin were checked by RequestCheck before this runs."""
        if self.read_only:
            return JSONResponse({"error": "pipe ui runs read-only"}, status_code=403)
        run_id = request.path_params["run_id"]
        form = {key: values[-1] for key, values in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        store = self.store()
        try:
            argv = action_argv(store, self.state_dir, action, run_id, form)
        except ActionRefused as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)
        finally:
            store.close()
        self.spawn(argv)
        if "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(f"/runs/{argv[-1]}", status_code=303)
        return JSONResponse({"started": [action, argv[-1]]}, status_code=202)

    def _spawn(self, argv: list[str]) -> None:
        self.actions = [process for process in self.actions if process.poll() is None]  # reap finished ones
        with open(StateDir(self.state_dir).ui_actions_log, "ab") as output:
            process = subprocess.Popen(
                argv, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self.actions.append(process)

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
            Route("/threads", self.threads_page),
            Route("/threads/{thread_id}", self.thread_page),
            Route("/workers", self.workers_page),
            Route("/api/workers", self.workers_json),
            Route("/api/threads/{thread_id}", self.thread_json),
            Route("/api/runs", self.runs_json),
            Route("/api/runs/events", self.runs_events),
            Route("/api/runs/{run_id}", self.run_json),
            Route("/api/runs/{run_id}/events", self.run_events),
            Route("/api/runs/{run_id}/log", self.log_events),
            Route("/api/runs/{run_id}/attempts/{attempt}/log", self.attempt_log),
            Route("/api/runs/{run_id}/rollback-plan", self.rollback_plan),
            *(
                Route(f"/api/runs/{{run_id}}/{name}", partial(self.act, action=name), methods=["POST"])
                for name in ACTIONS
            ),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
        app = Starlette(routes=routes)
        # Added innermost first: a request meets the Host name check, the body limit, the port,
        # origin and CSRF checks, then the token.
        app.add_middleware(TokenCheck, token=self.token)
        app.add_middleware(RequestCheck, port=self.port, sessions=self.sessions)
        app.add_middleware(RequestBodyLimitMiddleware, max_body_size=MAX_BODY)
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(self.host), www_redirect=False)
        return app


def _filters(request: Request) -> Filters:
    """The runs list's filters from the query string (a page that is not a number is page 1)."""
    params = request.query_params
    page = params.get("page", "1")
    return Filters(
        status=params.get("status", ""),
        pipeline=params.get("pipeline", ""),
        repository=params.get("repository", ""),
        issue=params.get("issue", ""),
        page=int(page) if _NUMBER.fullmatch(page) and int(page) > 0 else 1,
    )


def _query(filters: Filters, page: int) -> str:
    """The query string of the runs list with `filters` at `page`."""
    values = {
        "status": filters.status,
        "pipeline": filters.pipeline,
        "repository": filters.repository,
        "issue": filters.issue,
    }
    return urlencode({**{k: v for k, v in values.items() if v}, "page": str(page)})


def _displayed(value: Any) -> Any:
    """Every value a template shows is free of terminal control characters (a fragment already
    rendered, Markup, went through this when it was)."""
    return value if isinstance(value, markupsafe.Markup) or not isinstance(value, str) else printable(value)


def version(html: str) -> str:
    """A short fingerprint of a fragment, so a stream does not resend what a page shows."""
    return hashlib.sha256(html.encode()).hexdigest()[:16]

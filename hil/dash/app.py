"""The web app: three pages (runs and lab, a run, not found) and the JSON they poll.

Pages are static HTML + a small script that polls ``/api/...`` about once a second and draws
with Plotly (``Plotly.react``: only what changed is redrawn). Every endpoint only reads, through
a :class:`~hil.dash.source.RunSource`; the reads run in Starlette's thread pool, never on the
event loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from hil.dash import figures, views
from hil.dash.source import RunSource

STATIC = Path(__file__).with_name("static")
PLOTLY_JS = Path(plotly.__file__).with_name("package_data") / "plotly.min.js"
_NO_STORE = {"Cache-Control": "no-store"}


def _json(payload: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(payload, status_code=status, headers=_NO_STORE)


def create_app(source: RunSource, *, catalog: str | None = None) -> Starlette:
    """The app serving ``source``; ``catalog`` is only shown (see docs/dash.md)."""

    def page(name: str) -> FileResponse:
        return FileResponse(STATIC / name, headers=_NO_STORE)

    def index(request: Request) -> Response:
        return page("index.html")

    def run_page(request: Request) -> Response:
        if not source.has(request.path_params["run_id"]):
            raise HTTPException(404, f"no run {request.path_params['run_id']!r}")
        return page("run.html")

    def api_runs(request: Request) -> Response:
        return _json({"runs": views.run_list(source.runs())})

    def api_lab(request: Request) -> Response:
        lines = source.runs()
        running = [line for line in lines if line.state == "running"]
        lab: dict[str, Any] = {"calibrations": views.calibration_view(source.calibrations()),
                               "running": [line.id for line in running], "from": None,
                               "fridge": [], "interlocks": [], "catalog": catalog}
        # The newest running run speaks for the fridge and the interlocks; with none, the
        # newest run (its last readings, its interlocks idle).
        speaker = running[0] if running else next((x for x in lines if x.state != "unreadable"),
                                                  None)
        record = source.record(speaker.id) if speaker else None
        if speaker is not None and record is not None:
            lab.update({"from": speaker.id, "fridge": views.temperatures(record),
                        "interlocks": views.interlocks(record)})
        return _json(lab)

    def _record(request: Request) -> tuple[str, Any]:
        run_id = request.path_params["run_id"]
        record = source.record(run_id)
        if record is None:
            raise HTTPException(404, f"no run {run_id!r}")
        return run_id, record

    def api_run(request: Request) -> Response:
        run_id, record = _record(request)
        pngs = {s for s in record.points if source.figure_path(run_id, s) is not None}
        return _json(views.run_view(run_id, record, figures=pngs))

    def api_figure(request: Request) -> Response:
        run_id, record = _record(request)
        step = request.path_params["step"]
        if step not in record.steps:
            raise HTTPException(404, f"run {run_id!r} has no step {step!r}")
        data = record.steps[step]
        maps = [n for n in data.data_vars if data[n].ndim == 2]
        payload = {"step": step, "points": record.points.get(step, 0),
                   "planned": record.planned.get(step),
                   "figure": figures.step_figure(data, title=step),
                   "newest": figures.newest_row(data, maps[0]) if maps else None}
        return _json(payload)

    def step_png(request: Request) -> Response:
        run_id, step = request.path_params["run_id"], request.path_params["step"]
        path = source.figure_path(run_id, step)
        if path is None:
            raise HTTPException(404, f"no figure for step {step!r} of run {run_id!r}")
        return FileResponse(path, media_type="image/png", headers=_NO_STORE)

    def plotly_js(request: Request) -> Response:
        return FileResponse(PLOTLY_JS, media_type="text/javascript")

    def favicon(request: Request) -> Response:
        return Response(status_code=204)  # no icon; a 204 keeps browsers' consoles quiet

    async def not_found(request: Request, exc: Exception) -> Response:
        detail = getattr(exc, "detail", "not found")
        code = getattr(exc, "status_code", 404)
        if request.url.path.startswith("/api/"):
            return _json({"error": detail}, code)
        html = (STATIC / "404.html").read_text(encoding="utf-8")
        return HTMLResponse(html.replace("{{detail}}", _escape(str(detail))), status_code=code,
                            headers=_NO_STORE)

    routes = [
        Route("/", index),
        Route("/runs/{run_id}", run_page),
        Route("/runs/{run_id}/steps/{step}.png", step_png),
        Route("/api/runs", api_runs),
        Route("/api/lab", api_lab),
        Route("/api/runs/{run_id}", api_run),
        Route("/api/runs/{run_id}/steps/{step}/figure", api_figure),
        Route("/static/plotly.min.js", plotly_js),
        Route("/favicon.ico", favicon),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: not_found})


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))

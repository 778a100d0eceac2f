"""A step's data as a Plotly figure: scalars against the setpoint, traces as traces, maps as maps.

Built from the step's ``xarray.Dataset`` as :func:`hil.store.open_run` returns it, so what
the page shows is what is on disk. Long series are thinned for the browser (every n-th point,
the newest always kept); the point count the page shows is the full one.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

#: At most this many points per line and this many rows x columns per map go to the browser.
MAX_LINE_POINTS = 5000
MAX_MAP_ROWS = 300
MAX_MAP_COLUMNS = 1000
#: At most this many measured quantities get a panel (the rest are listed in the title).
MAX_PANELS = 4
#: Height of one panel (pixels).
PANEL_PX = 320
#: A plain white style. Plotly's named templates are deep-copied into every figure, which costs
#: more than building the figure itself; "none" and a few colours are cheap.
STYLE: dict[str, Any] = {"template": "none", "plot_bgcolor": "white", "paper_bgcolor": "white",
                         "font": {"family": "system-ui, sans-serif", "size": 12},
                         "colorway": ["#1f6feb", "#d1495b", "#2a9d8f", "#e9a03b"]}


def _label(variable: Any, name: str) -> str:
    long_name = variable.attrs.get("long_name") or name
    unit = variable.attrs.get("units") or ""
    return f"{long_name} ({unit})" if unit else str(long_name)


def _thin(n: int, limit: int) -> np.ndarray:
    """Indices of at most ``limit`` evenly spread items of ``n``, the last one included."""
    if n <= limit:
        return np.arange(n)
    index = np.linspace(0, n - 1, limit).round().astype(int)
    return np.unique(index)


def _axis_values(data: Any, dim: str) -> tuple[np.ndarray, str]:
    if dim in data.coords:
        coord = data.coords[dim]
        return np.asarray(coord.values, dtype=float), _label(coord, dim)
    return np.arange(data.sizes[dim], dtype=float), dim


def step_figure(data: Any, *, title: str) -> dict[str, Any]:
    """The Plotly figure (as a JSON-ready dict) of one step's dataset."""
    names = [n for n in data.data_vars if data[n].ndim >= 1 and data[n].dtype.kind == "f"]
    shown = names[:MAX_PANELS]
    if not shown:
        fig = go.Figure()
        fig.update_layout(title=f"{title}: no data yet")
        return _as_dict(fig)
    # About 100 px between panels: room for an x-axis title and the next panel's title.
    spacing = 100 / (PANEL_PX * len(shown)) if len(shown) > 1 else 0.0
    fig = make_subplots(rows=len(shown), cols=1, vertical_spacing=spacing,
                        subplot_titles=[_label(data[n], n) for n in shown])
    for row, name in enumerate(shown, start=1):
        variable = data[name]
        if variable.ndim == 1:
            _line(fig, data, name, row)
        else:
            _map(fig, data, name, row)
    more = f" (+ {', '.join(names[MAX_PANELS:])})" if len(names) > MAX_PANELS else ""
    fig.update_layout(title={"text": title + more, "x": 0.01}, showlegend=False,
                      height=max(360, PANEL_PX * len(shown)), margin={"l": 70, "r": 30, "t": 70, "b": 50},
                      uirevision=title, **STYLE)
    return _as_dict(fig)


def _line(fig: go.Figure, data: Any, name: str, row: int) -> None:
    variable = data[name]
    dim = variable.dims[0]
    x, xlabel = _axis_values(data, dim)
    y = np.asarray(variable.values, dtype=float)
    keep = np.isfinite(y)
    x, y = x[keep], y[keep]
    index = _thin(y.size, MAX_LINE_POINTS)
    fig.add_trace(go.Scatter(x=x[index], y=y[index], mode="lines+markers", name=name,
                             marker={"size": 5}, line={"width": 1.5}), row=row, col=1)
    fig.update_xaxes(title_text=xlabel, row=row, col=1, **_GRID)
    fig.update_yaxes(row=row, col=1, **_GRID)


_GRID = {"showgrid": True, "gridcolor": "#e6e8ee", "zeroline": False, "linecolor": "#9aa3b5",
         "showline": True, "ticks": "outside"}


def _map(fig: go.Figure, data: Any, name: str, row: int) -> None:
    """A 2-D sweep (or a trace per point) as a map; a 3-D one shows its newest 2-D slice."""
    variable = data[name]
    while variable.ndim > 2:
        variable = variable.isel({variable.dims[0]: _newest(variable)})
    ydim, xdim = variable.dims
    y, ylabel = _axis_values(data, ydim)
    x, xlabel = _axis_values(data, xdim)
    z = np.asarray(variable.values, dtype=float)
    taken = np.isfinite(z).any(axis=1)
    rows = _thin(z.shape[0], MAX_MAP_ROWS)
    rows = rows[taken[rows]] if taken.any() else rows[:0]
    columns = _thin(z.shape[1], MAX_MAP_COLUMNS)
    unit = variable.attrs.get("units") or ""
    low, high = fig.get_subplot(row, 1).yaxis.domain  # the colour bar beside its own panel
    fig.add_trace(go.Heatmap(x=x[columns], y=y[rows], z=z[np.ix_(rows, columns)],
                             colorscale="Viridis", name=name,
                             colorbar={"title": {"text": unit}, "len": high - low,
                                       "y": (low + high) / 2, "yanchor": "middle"}),
                  row=row, col=1)
    fig.update_xaxes(title_text=xlabel, row=row, col=1, **_GRID)
    fig.update_yaxes(title_text=ylabel, row=row, col=1, **_GRID)


def _newest(variable: Any) -> int:
    flat = np.isfinite(np.asarray(variable.values, dtype=float)).reshape(variable.shape[0], -1)
    taken = np.flatnonzero(flat.any(axis=1))
    return int(taken[-1]) if taken.size else 0


def newest_row(data: Any, name: str) -> dict[str, Any] | None:
    """The newest row of a 2-D column as a line: the newest trace of a trace per point, the
    newest inner sweep of a 2-D sweep. None while no row has data."""
    variable = data[name]
    if variable.ndim != 2:
        return None
    z = np.asarray(variable.values, dtype=float)
    taken = np.flatnonzero(np.isfinite(z).any(axis=1))
    if taken.size == 0:
        return None
    x, xlabel = _axis_values(data, variable.dims[1])
    columns = _thin(x.size, MAX_LINE_POINTS)
    fig = go.Figure(go.Scatter(x=x[columns], y=z[taken[-1], columns], mode="lines"))
    fig.update_layout(title={"text": f"{name}: newest row ({variable.dims[0]} #{int(taken[-1])})", "x": 0.01},
                      xaxis={"title": {"text": xlabel}, **_GRID},
                      yaxis={"title": {"text": _label(variable, name)}, **_GRID}, height=300,
                      margin={"l": 70, "r": 30, "t": 50, "b": 50}, **STYLE)
    return _as_dict(fig)


def _as_dict(fig: go.Figure) -> dict[str, Any]:
    """The figure as plain JSON types: arrays as lists, NaN (a point not taken) as null.

    Plain lists, not Plotly's base64 typed arrays, so the page's figure holds the numbers
    themselves; and not through ``fig.to_json()``, whose per-element checks cost more than
    the rest of a poll.
    """
    return _plain(fig.to_plotly_json())


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            out = value.astype(object)
            out[~np.isfinite(value)] = None  # JSON has no nan or inf
            return out.tolist()
        return value.tolist()
    if isinstance(value, dict):
        if "bdata" in value and "dtype" in value:  # Plotly >= 6 stores arrays as base64
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
            shape = value.get("shape")
            if shape:
                array = array.reshape([int(n) for n in str(shape).split(",")])
            return _plain(array)
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value

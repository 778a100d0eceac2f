"""Serving the live view: loopback unless asked, then uvicorn until Ctrl-C or SIGTERM."""

from __future__ import annotations

from hil.dash.source import RunSource
from hil.net import is_loopback

#: How much the server lowers its CPU priority by default (see serve()).
NICE = 10


class RemoteRefused(ValueError):
    """A non-loopback address was asked for without ``allow_remote``."""


def check_host(host: str, allow_remote: bool) -> None:
    """Refuse a non-loopback bind unless allowed: the view has no authentication."""
    if not allow_remote and not is_loopback(host):
        raise RemoteRefused(f"--host {host}: not a loopback address; the dashboard has no "
                            f"authentication, so it listens on 127.0.0.1 unless --allow-remote "
                            f"is given (trusted networks only)")


def warm_up() -> None:
    """Pay the readers' first-use costs now rather than inside the first run someone watches:
    xarray imports its array backends (dask, when installed: seconds of CPU) on its first
    array, Plotly its figure machinery on the first figure, h5py's reader its modules."""
    import numpy as np
    import xarray

    import hil.store  # noqa: F401
    from hil.dash import figures

    data = xarray.Dataset({"line": ("x", np.zeros(2)), "map": (("x", "f"), np.zeros((2, 2)))},
                          coords={"x": np.arange(2.0), "f": np.arange(2.0)})
    figures.step_figure(data, title="warm-up")
    figures.newest_row(data, "map")


def serve(source: RunSource, *, host: str = "127.0.0.1", port: int = 8050,
          allow_remote: bool = False, catalog: str | None = None, nice: int = NICE) -> None:
    """Serve the view of ``source`` on ``host:port`` until interrupted.

    The server lowers its own CPU priority by ``nice`` (default +10: about a tenth of a normal
    process' share when they compete for a core): on a machine shared with a run, the run
    wins, and the page takes what is left. The readers' imports are done before the first
    request (:func:`warm_up`).
    """
    import os

    import uvicorn

    from hil.dash.app import create_app

    check_host(host, allow_remote)
    if nice and hasattr(os, "nice"):
        os.nice(nice)
    warm_up()
    config = uvicorn.Config(create_app(source, catalog=catalog), host=host, port=port,
                            log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run()

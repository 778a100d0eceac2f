"""Figures of the transduction steps: several series on one axes, log scales where powers span decades."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display in the lab's batch runs or on CI
import matplotlib.pyplot as plt  # noqa: E402


def save_series_plot(path: Path, series: Sequence[tuple], *, xlabel: str, ylabel: str, title: str,
                     note: str = "", xscale: str = "linear", yscale: str = "linear") -> Path:
    """``series``: ``(x, y, style, label)`` or ``(x, y, yerr, style, label)`` tuples; points with
    error bars when ``yerr`` is given; the fitted numbers in ``note`` in the corner."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    try:
        for entry in series:
            if len(entry) == 5:
                x, y, yerr, style, label = entry
                ax.errorbar(x, y, yerr=yerr, fmt=style, ms=4, capsize=2, label=label)
            else:
                x, y, style, label = entry
                ax.plot(x, y, style, ms=4, lw=1.5, label=label)
        ax.set_xscale(xscale)
        ax.set_yscale(yscale)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(loc="best", fontsize=8)
        if note:
            ax.text(0.02, 0.97, note, transform=ax.transAxes, fontsize=8, family="monospace",
                    va="top", bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path

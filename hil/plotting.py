"""Figures saved beside the run file: the data a fit saw, and the fit."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display in the lab's batch runs or on CI
import matplotlib.pyplot as plt  # noqa: E402


def save_fit_plot(path: Path, x, y, x_fit, y_fit, *, xlabel: str, ylabel: str, title: str,
                  note: str = "") -> Path:
    """Data as points, the fit as a line, the fitted numbers in the corner."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    try:
        ax.plot(x, y, ".", ms=4, label="data")
        ax.plot(x_fit, y_fit, "-", lw=1.5, label="fit")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(loc="lower right")
        if note:
            ax.text(0.02, 0.03, note, transform=ax.transAxes, fontsize=8, family="monospace",
                    va="bottom", bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path

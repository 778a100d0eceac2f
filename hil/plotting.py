"""Figures saved beside the run file: the data a fit saw, and the fit."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import matplotlib
import numpy as np

matplotlib.use("Agg")  # no display in the lab's batch runs or on CI
import matplotlib.pyplot as plt  # noqa: E402

# Where matplotlib may put the legend (the named places it accepts).
LegendPlace = Literal["best", "upper right", "upper left", "lower left", "lower right", "right",
                      "center left", "center right", "lower center", "upper center", "center"]


def save_series_plot(path: Path, series: Sequence[tuple], *, xlabel: str, ylabel: str, title: str,
                     note: str = "", xscale: str = "linear", yscale: str = "linear",
                     legend: LegendPlace = "best", note_at_top: bool = True) -> Path:
    """``series``: ``(x, y, style, label)`` or ``(x, y, yerr, style, label)`` tuples; points with
    error bars when ``yerr`` is given; the fitted numbers in ``note`` in a corner."""
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
        ax.legend(loc=legend, fontsize=8)
        if note:
            ax.text(0.02, 0.97 if note_at_top else 0.03, note, transform=ax.transAxes, fontsize=8,
                    family="monospace", va="top" if note_at_top else "bottom",
                    bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path


def save_fit_plot(path: Path, x, y, x_fit, y_fit, *, xlabel: str, ylabel: str, title: str,
                  note: str = "") -> Path:
    """Data as points, the fit as a line, the fitted numbers in the corner."""
    return save_series_plot(path, [(x, y, ".", "data"), (x_fit, y_fit, "-", "fit")],
                            xlabel=xlabel, ylabel=ylabel, title=title, note=note,
                            legend="lower right", note_at_top=False)


def save_complex_fit_plot(path: Path, x, s, x_fit, s_fit, *, xlabel: str, title: str,
                          note: str = "") -> Path:
    """A complex trace and its fit: magnitude (dB) and phase against x, and the IQ plane."""
    fig, (ax_mag, ax_phase, ax_iq) = plt.subplots(1, 3, figsize=(13.0, 4.2), layout="constrained")
    try:
        for ax, y, y_fit, label in (
                (ax_mag, 20 * np.log10(np.abs(s)), 20 * np.log10(np.abs(s_fit)), "|S| (dB)"),
                (ax_phase, np.angle(s), np.angle(s_fit), "phase (rad)")):
            ax.plot(x, y, ".", ms=3, label="data")
            ax.plot(x_fit, y_fit, "-", lw=1.2, label="fit")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(label)
        ax_iq.plot(np.real(s), np.imag(s), ".", ms=3, label="data")
        ax_iq.plot(np.real(s_fit), np.imag(s_fit), "-", lw=1.2, label="fit")
        ax_iq.plot([0], [0], "k+", ms=8)
        ax_iq.set_aspect("equal", adjustable="datalim")
        ax_iq.set_xlabel("Re S")
        ax_iq.set_ylabel("Im S")
        ax_iq.legend(loc="upper right")
        fig.suptitle(title)
        if note:
            ax_iq.text(0.02, 0.03, note, transform=ax_iq.transAxes, fontsize=8,
                        family="monospace", va="bottom",
                        bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path

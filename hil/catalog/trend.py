"""One result across runs: values with error bars over time, cooldowns marked."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from hil.catalog.db import Catalog


def cooldown_boundaries(points: list[dict[str, Any]]) -> list[int]:
    """Indices of the points that start a new cooldown (the first point excluded)."""
    return [i for i in range(1, len(points))
            if points[i]["cooldown"] != points[i - 1]["cooldown"]]


def trend(catalog: Catalog, result: str, out: Path, *, device: str | None = None
          ) -> list[dict[str, Any]]:
    """Plot ``result`` (``name`` or ``step.name``) of every indexed run to ``out`` (PNG).

    Suspect results are drawn hollow; a dashed line marks each change of cooldown. Returns
    the points plotted, oldest first.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [p for p in catalog.series(result, device=device) if p["value"] is not None]
    if not points:
        where = f" of device {device}" if device is not None else ""
        raise ValueError(f"no run{where} in catalog {catalog.where} has a result {result!r}")
    units = sorted({p["unit"] for p in points})
    if len(units) > 1:
        raise ValueError(f"result {result!r} has several units in the catalog ({', '.join(units)});"
                         f" name it as STEP.RESULT")
    times = [datetime.fromisoformat(p["started"]) for p in points]
    figure, axes = plt.subplots(figsize=(8, 4.5), layout="constrained")
    try:
        for suspect in (False, True):
            chosen = [i for i, p in enumerate(points) if bool(p["suspect"]) is suspect]
            if not chosen:
                continue
            # matplotlib's date converter takes datetimes; its stubs declare numbers only.
            axes.errorbar([times[i] for i in chosen],  # type: ignore[arg-type]
                          [points[i]["value"] for i in chosen],
                          yerr=[points[i]["stderr"] or 0.0 for i in chosen], fmt="o",
                          capsize=3, color="C0",
                          mfc="none" if suspect else "C0",
                          label="suspect" if suspect else "result")
        for i in cooldown_boundaries(points):
            middle = times[i - 1] + (times[i] - times[i - 1]) / 2
            axes.axvline(middle,  # type: ignore[arg-type]  # a date, as above
                         color="0.5", linestyle="--", linewidth=1)
            axes.annotate(points[i]["cooldown"] or "(no cooldown)", (middle, 1.0),
                          xycoords=("data", "axes fraction"), rotation=90, va="top",
                          ha="right", fontsize=8, color="0.3")
        unit = f" [{units[0]}]" if units[0] else ""
        axes.set_ylabel(f"{result}{unit}")
        axes.set_xlabel("run started (UTC)")
        title = result + (f", device {device}" if device is not None else "")
        axes.set_title(title)
        figure.autofmt_xdate()
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(out, dpi=100)
    finally:
        plt.close(figure)
    return points

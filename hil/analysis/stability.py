"""A level held over time: mean, scatter and drift of a time series (physics.md §3 (a)).

Fits ``y(t) = mean + drift (t - t_mid)`` by least squares: ``mean`` is the level at the middle of
the record with its standard error, ``std`` the scatter of the readings (sample standard
deviation), ``drift`` the slope with its standard error (a settled fridge drifts by much less
than its scatter over the record).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hil.analysis.data import paired
from hil.results import FitError


@dataclass(frozen=True)
class Level:
    mean: float
    mean_err: float
    std: float
    drift: float  # per unit of t
    drift_err: float
    n: int


def level(t, y) -> Level:
    """Mean, scatter and drift of readings ``y`` taken at times ``t``."""
    t, y = paired(t, y, names="times and readings", at_least=3, of="readings")
    if not np.all(np.isfinite(y)):
        raise FitError("a reading is not a number")
    std = float(np.std(y, ddof=1))
    mean = float(np.mean(y))
    dt = t - t.mean()
    sxx = float(dt @ dt)
    if sxx > 0:
        drift = float(dt @ (y - mean)) / sxx
        resid = y - mean - drift * dt
        s2 = float(resid @ resid) / (t.size - 2)
        drift_err = float(np.sqrt(s2 / sxx))
    else:
        drift, drift_err = 0.0, float("inf")
    return Level(mean=mean, mean_err=std / np.sqrt(t.size), std=std, drift=drift,
                 drift_err=drift_err, n=int(t.size))

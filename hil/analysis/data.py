"""The shape check every fit runs on its data first: two 1-D arrays of one length, enough
points; a :class:`~hil.results.FitError` in the fit's own words otherwise."""

from __future__ import annotations

from typing import Any

import numpy as np

from hil.results import FitError


def paired(x: Any, y: Any, *, names: str, at_least: int, of: str,
           y_dtype: type = float) -> tuple[np.ndarray, np.ndarray]:
    """``x`` (float) and ``y`` (``y_dtype``) as arrays, refused unless both are 1-D of one
    length with ``at_least`` points: ``names`` says what the two are ("times and readings"),
    ``of`` what a point is ("readings")."""
    xa = np.asarray(x, dtype=float)
    ya: np.ndarray = np.asarray(y, dtype=y_dtype)
    if xa.shape != ya.shape or xa.ndim != 1:
        raise FitError(f"{names} must be 1-D of one length, got {xa.shape}, {ya.shape}")
    if xa.size < at_least:
        raise FitError(f"need at least {at_least} {of}, got {xa.size}")
    return xa, ya

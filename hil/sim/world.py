"""The in-process twin a simulated station runs on, built from the station's ``twin:`` section.

Core (:mod:`hil.station`) builds its simulated lab through here, so it never imports the
physics package (:mod:`hil.twin`) itself: only the simulation backend couples the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hil.clock import Clock
from hil.twin import TwinLab, TwinParams
from hil.twin.params import TwinParamError


def twin_world(params: Mapping[str, Any] | None, *, where: str, clock: Clock | None = None) -> TwinLab:
    """The twin with ``params`` over its defaults (:class:`TwinParamError` names ``where`` and
    the key on a bad one), on ``clock`` (virtual if None)."""
    return TwinLab(TwinParams.from_mapping(params, where=where), clock)


__all__ = ["TwinLab", "TwinParamError", "twin_world"]

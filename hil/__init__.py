"""qlink-hil: control and characterization of microwave-to-optical transducer labs.

The notebook API (docs/notebook.md) is at the top level: :func:`open_lab`, :func:`run_step`,
:func:`measure`, and :class:`LabRun` (what a run leaves). They are imported on first use, so
``import hil`` (and the ``hil`` command) stays fast.
"""

from __future__ import annotations

from typing import Any

_LAZY = {"open_lab": "hil.notebook", "run_step": "hil.notebook", "measure": "hil.notebook",
         "LabSession": "hil.notebook", "LabRun": "hil.runview", "Results": "hil.runview"}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hil' has no attribute {name!r}")

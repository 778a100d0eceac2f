"""Fits that turn recorded sweeps into calibrated numbers with uncertainties.

The generic fits a lab's own steps reuse are public here; each raises
:class:`hil.results.FitError` when the data do not show what it looks for:

- :func:`fit_line` -> :class:`LineFit`: a straight line, relative or equal weights;
- :func:`fit_dip` -> :class:`DipFit`: a Lorentzian transmission dip (:func:`dip_model`), with
  the linewidth split into intrinsic and external rates (``DipFit.kappa_split``);
- :func:`fit_reflection` -> :class:`ReflectionFit`: a one-port resonator in complex VNA
  reflection data (:func:`reflection_model`), which tells over- from under-coupling.

The other modules hold the physics of this project's own steps (efficiency, noise, cooling).
"""

from hil.analysis.line import LineFit, fit_line
from hil.analysis.lorentzian import DipFit, dip_model, fit_dip
from hil.analysis.reflection import ReflectionFit, fit_reflection, reflection_model

__all__ = ["DipFit", "LineFit", "ReflectionFit", "dip_model", "fit_dip", "fit_line",
           "fit_reflection", "reflection_model"]

"""What the transduction steps take from the resonance steps and the pump calibration.

:func:`load_priors` gathers the optical and microwave resonances (and ``chip_per_monitor``) of
this run, or raises a clear MissingCalibration naming what to run first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from scipy.constants import c as SPEED_OF_LIGHT

from hil.analysis.checks import SIGMAS, built_on
from hil.analysis.transducer import Rates
from hil.calibration import require
from hil.results import Result

#: The resonance steps' linewidths: what eta_max = eta_o eta_m is computed from.
LINEWIDTHS = ("kappa_o_hz", "kappa_o_ex_hz", "kappa_m_hz", "kappa_m_ex_hz")


@dataclass(frozen=True)
class Priors:
    """What the resonance steps (and the pump calibration) found, with relative errors."""

    pump_wavelength_m: float   # the optical (pump) resonance
    rates: Rates
    f_m_hz: float
    chip_per_monitor: float | None
    rel_err: dict[str, float]  # relative standard errors by result name
    suspects: dict[str, str] | None = None  # reason by result name, for suspect priors
    # the optical dip's depth error and its correlation with the width's (kappa_o_ex is
    # kappa_o (1 -+ sqrt(1 - depth)) / 2), where the resonance step recorded them
    dip_depth_err: float | None = None
    dip_width_depth_corr: float = 0.0

    def doubt(self, *names: str) -> str | None:
        """Why a result computed from the priors ``names`` (all of them if none) inherits a doubt."""
        found = {n: r for n, r in (self.suspects or {}).items() if not names or n in names}
        return ("built on suspect " + "; ".join(f"{n} ({r})" for n, r in found.items())
                if found else None)

    @property
    def pump_frequency_hz(self) -> float:
        return SPEED_OF_LIGHT / self.pump_wavelength_m


def _result(run, step: str, name: str) -> Result:
    """``step.name``; optical_resonance's kappa_o_ex_hz replaced by the root the conversion data
    chose (efficiency_vs_pump, experiments.transduction.coupling) once this run has it."""
    if (step, name) == ("optical_resonance", "kappa_o_ex_hz"):
        chosen = getattr(run, "results", {}).get("efficiency_vs_pump", {}).get(name)
        if chosen is not None:
            return chosen
    return require(run, step, name)


def load_priors(run, *, pump_calibration: bool = True) -> Priors:
    """The optical and microwave resonances (and chip_per_monitor) of this run, or a clear
    MissingCalibration naming what to run first."""
    rel: dict[str, float] = {}
    values: dict[str, float] = {}
    wanted = [("optical_resonance", "wavelength_m"), ("optical_resonance", "kappa_o_hz"),
              ("optical_resonance", "kappa_o_ex_hz"), ("microwave_resonance", "f_m_hz"),
              ("microwave_resonance", "kappa_m_hz"), ("microwave_resonance", "kappa_m_ex_hz")]
    if pump_calibration:
        wanted.append(("pump_calibration", "chip_per_monitor"))
    used: dict[str, Result] = {}
    for step, name in wanted:
        result = used[f"{step}.{name}"] = _result(run, step, name)
        values[name] = float(result.value)
        rel[name] = (result.stderr or 0.0) / abs(result.value) if result.value else 0.0
    rates = Rates(values["kappa_o_hz"], values["kappa_o_ex_hz"], values["kappa_m_hz"],
                  values["kappa_m_ex_hz"])
    suspect = built_on(used)
    if suspect and hasattr(run, "event"):
        run.event("suspect", f"going on with suspect calibrations, results built on them are "
                             f"marked: {suspect}")
    optical = getattr(run, "results", {}).get("optical_resonance", {})
    depth, corr = optical.get("min_transmission"), optical.get("width_depth_correlation")
    return Priors(values["wavelength_m"], rates, values["f_m_hz"],
                  values.get("chip_per_monitor"), rel,
                  {key.split(".")[1]: r.suspect for key, r in used.items() if r.suspect},
                  dip_depth_err=depth.stderr if depth is not None else None,
                  dip_width_depth_corr=float(corr.value) if corr is not None else 0.0)


def eta_max_with_error(priors: Priors) -> tuple[float, float]:
    """eta_o eta_m (the on-chip efficiency at C = 1, physics.md §1.3) and its standard error."""
    r = priors.rel_err
    rel = math.sqrt(r["kappa_o_hz"] ** 2 + r["kappa_o_ex_hz"] ** 2 + r["kappa_m_hz"] ** 2
                    + r["kappa_m_ex_hz"] ** 2)
    value = priors.rates.eta_o * priors.rates.eta_m
    return value, value * rel


#: efficiency_vs_pump's power law of the pumped microwave mode (physics.md §1.2).
PUMP_LAW = ("kappa_m_pump_loss_hz", "f_m_pump_shift_hz", "pump_loss_exponent")


@dataclass(frozen=True)
class PumpedMode:
    """The microwave mode under a pump of ``power_w`` (on-chip peak): its rates and its offset
    ``delta_m_hz`` from the pump-off f_m, from efficiency_vs_pump's measured power law."""

    power_w: float
    rates: Rates
    delta_m_hz: float
    suspect: str | None = None


def pumped_mode(run, priors: Priors, power_w: float) -> PumpedMode:
    """The microwave mode at ``power_w`` on chip: ``kappa_m,0 + b_k P^gamma`` and
    ``-b_f P^gamma`` (physics.md §1.2) with the law efficiency_vs_pump measured in this run; the
    pump-off mode when this run has no such measurement or it found no change."""
    found = _pump_law_in_use(run)
    if found is None:
        return PumpedMode(power_w, priors.rates, 0.0)  # no measured change: the pump-off mode
    loss, shift, gamma = (float(found[name].value) for name in PUMP_LAW)
    x = max(power_w, 0.0) ** gamma
    rates = replace(priors.rates, kappa_m_hz=max(priors.rates.kappa_m_hz + loss * x,
                                                 priors.rates.kappa_m_ex_hz))
    doubts = [f"efficiency_vs_pump.{n} ({found[n].suspect})" for n in PUMP_LAW if found[n].suspect]
    return PumpedMode(power_w, rates, -shift * x,
                      "built on suspect " + "; ".join(doubts) if doubts else None)


def pumped_kappa_m_err(run, power_w: float) -> float:
    """The standard error of the pumped kappa_m :func:`pumped_mode` gives at ``power_w``: the
    law's loss coefficient's error times P^gamma; 0 where the run has no law in use."""
    found = _pump_law_in_use(run)
    if found is None:
        return 0.0
    loss, gamma = found["kappa_m_pump_loss_hz"], float(found["pump_loss_exponent"].value)
    return float(loss.stderr or 0.0) * max(power_w, 0.0) ** gamma


def _pump_law_in_use(run) -> dict[str, Result] | None:
    """efficiency_vs_pump's pump law where this run has one that found a change, else None."""
    found = getattr(run, "results", {}).get("efficiency_vs_pump", {})
    if not all(name in found for name in PUMP_LAW) or not any(
            abs(found[n].value) > SIGMAS * (found[n].stderr or 0.0) for n in PUMP_LAW[:2]):
        return None
    return found

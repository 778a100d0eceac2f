"""Added noise vs pump power from the microwave output spectrum (physics.md §1.5, §3 (g)).

With the pump on the optical resonance and no microwave tone (VNA and source off), the
spectrum analyzer's noise marker reads the output noise density at f_m (on resonance) and at
``off_resonance_offset_hz`` beside it, where the device reflects the input line (its occupancy
from line_noise's bound, 0 without it; physics.md §1.5a: a warm line marks n_add). The amplifier
noise temperature of the station (``constants: hemt_noise_temp_k``, from a Y-factor) turns the
off-resonance density into the output chain's gain; the same gain turns the on-resonance density
into the output occupancy N_m(f_m). With C at each power from efficiency_vs_pump
(``C = P L / P_C1``, L the pump-detuning factor measured from the through port's dip as in
efficiency_vs_pump, scaled by kappa_m,0 / kappa_m(P)) and the microwave mode's pump-induced
loss and shift from efficiency_vs_pump's power law (physics.md §1.2), the bookkeeping of
physics.md §1.5 gives the microwave mode's internal bath n_int and the input-referred added
noise, m->o ``n_int (1 - eta_m)/eta_m`` and o->m.

Each power is held until the mixing chamber has settled under the pump's average load (its drift
over ``settle_window_s`` below ``settle_rel`` of its temperature, :func:`hil.settle.settle`; at
most ``settle_s``); the mixing-chamber temperature is logged with
every reading, since its thermal occupancy adds to n_int.

Sequential stopping (lab time goes where the result needs it). The results are given at the
operating power: there, reading pairs are taken until n_add's standard error is below
``n_add_rel`` of it (at least ``min_readings``, at most ``readings``); the other powers, which
draw the curve n_add(P), get ``min_readings`` pairs. n_add's error takes one pair's scatter
pooled over every power's pairs (a few pairs' own scatter can come out several times too small,
and a rule stopping on it stops early exactly then). A reading pair not taken is stored as NaN
(the run file keeps the planned grid) and an event says where the averaging stopped.

The hot bath follows the pump's peak power (pulsed pump: the analyzer's noise is taken as gated
to the pulses).
"""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from qcodes.parameters import Parameter

from experiments.transduction.noise_readings import (
    ANALYZER_RBW,
    ESA_AVERAGES,
    OFF_RESONANCE_OFFSET,
    noise_marker,
    noise_temperature,
    noise_windows,
    setup_analyzer,
)
from experiments.transduction.params import (
    LASER_POWER,
    MONITOR_AVERAGES,
    POWER_MAX,
    POWER_MIN,
    POWER_ORDER,
    POWERS,
    Param,
)
from experiments.transduction.priors import LINEWIDTHS, load_priors, pumped_mode
from experiments.transduction.pump import (
    check_wavelength,
    duty_cycle,
    laser_powers,
    on_chip_peak_w,
    on_chip_rel_err,
    on_grid,
    operating_laser_power,
    pump_setpoint,
    start_pump,
)
from experiments.transduction.pump_detuning import measure_pump_detuning
from experiments.transduction.tuning import line_occupancy
from hil.analysis.checks import flag_all, precise
from hil.analysis.noise import added_noise as added_noise_of
from hil.analysis.noise import internal_bath, output_occupancy, pooled_ratio_scatter
from hil.analysis.transducer import Rates, s_element
from hil.calibration import require
from hil.experiment import step
from hil.parameters import Check, role_range, within
from hil.plotting import save_series_plot
from hil.results import Result
from hil.settle import SETTLE_REL, SETTLE_WINDOW
from hil.units import dbm_to_w

STEP = "added_noise"
#: Fewest degrees of freedom of the pooled reading scatter n_add's error is vouched for with.
MIN_SCATTER_DOF = 4


@step(needs=("efficiency_vs_pump",), valid_for_s=3600, checks=(POWER_ORDER, Check(
    lambda p: p["min_readings"] <= p["readings"],
    "min_readings ({min_readings}) must not exceed readings ({readings})")))
def added_noise(
        lab, run, *,
        powers: Annotated[int, POWERS] = 5,
        power_min_w: Annotated[float, POWER_MIN] = 0.0,
        power_max_w: Annotated[float, POWER_MAX] = 0.0,
        operating_power_w: Annotated[float, LASER_POWER(
            "Laser power the results are given at", zero="the highest of the sweep")] = 0.0,
        readings: Annotated[int, Param("", (2, 1000), "Most on/off-resonance reading pairs "
                                       "per power")] = 32,
        min_readings: Annotated[int, Param("", (2, 1000), "Fewest reading pairs per power (the "
                                           "only ones away from the operating power)")] = 3,
        n_add_rel: Annotated[float, Param("", (0.0, 1.0), "Stop averaging at the operating power "
                                          "once n_add's relative error is below this",
                                          zero="never: all readings")] = 0.03,
        off_resonance_offset_hz: Annotated[float, OFF_RESONANCE_OFFSET] = 0.0,
        rbw_hz: Annotated[float, ANALYZER_RBW] = 10e3,
        esa_points: Annotated[int, Param("", within(role_range("esa", "points"), 3),
                                         "Points per analyzer sweep")] = 21,
        esa_averages: Annotated[int, ESA_AVERAGES] = 2500,
        settle_s: Annotated[float, Param("s", (0.0, 3600.0), "Longest wait at each power before "
                                         "its readings")] = 600.0,
        settle_window_s: Annotated[float, SETTLE_WINDOW] = 30.0,
        settle_rel: Annotated[float, SETTLE_REL] = 1e-3,
        monitor_averages: Annotated[int, MONITOR_AVERAGES] = 10) -> dict[str, Result]:
    """Output noise at f_m vs pump power -> n_int and the added noise n_add at the operating power.

    Laser powers (W, laser output): ``powers`` log-spaced from ``power_min_w`` to ``power_max_w``
    (0 = the laser's bound), plus ``operating_power_w`` (0 = the highest). Per power:
    ``min_readings`` to ``readings`` pairs of on/off-resonance noise-marker readings (see the
    module docs), each from its own acquisition (``esa_points`` points over 20 RBW,
    ``esa_averages`` sweeps).
    """
    priors = load_priors(run)
    p_c1 = require(run, "efficiency_vs_pump", "p_c1_w")
    duty = duty_cycle(STEP, lab)
    t_n = noise_temperature(STEP, lab)
    laser, esa = lab.pump, lab.esa
    operating = operating_laser_power(run, STEP, laser, operating_power_w)
    planned = laser_powers(laser, powers, power_min_w, power_max_w or operating)
    planned = np.unique(np.append(planned, operating))
    rates = priors.rates
    f_m = priors.f_m_hz
    offset, span = noise_windows(STEP, esa, rates, f_m, off_resonance_offset_hz, rbw_hz)
    wavelength = on_grid(laser, priors.pump_wavelength_m)
    check_wavelength(STEP, lab, wavelength)

    # -- the lab -------------------------------------------------------------------------------
    for role in ("vna", "mw_source"):  # no microwave tone on the line while noise is measured
        if role in lab.roles:
            lab.roles[role].safe_state()
    setup_analyzer(esa, rbw_hz, esa_points, esa_averages)
    start_pump(lab, wavelength, float(planned[0]), monitor_averages)
    pump = measure_pump_detuning(lab, run, STEP, priors, wavelength, float(planned[0]))
    delta_p, factor = pump.detuning_hz, pump.factor
    c_rel = math.hypot((p_c1.stderr or 0.0) / p_c1.value, priors.rel_err.get("chip_per_monitor", 0.0),
                       pump.factor_err / factor)

    def precision(on, off, monitor, earlier) -> float:
        """n_add's relative error at the operating power from the pairs taken so far, with one
        pair's scatter pooled over every power's pairs (``earlier``: the powers before)."""
        coop = float(on_chip_peak_w(np.mean(monitor), priors.chip_per_monitor, duty)) * factor / p_c1.value
        on_w, off_w = dbm_to_w(np.array(on)), dbm_to_w(np.array(off))
        scatter, _ = pooled_ratio_scatter([*earlier, (on_w, off_w)])
        row = _analyse(on_w, off_w, f_m, offset, t_n, coop, rates, -delta_p, ratio_scatter=scatter)
        return _errors(row, coop, c_rel, rates, priors.rel_err, -delta_p)["n_add"] / abs(row["n_add"])

    measured = {"monitor_power": lab.monitor.power,
                "psd_on": noise_marker(esa, "psd_on", f_m, span),
                "psd_off": noise_marker(esa, "psd_off", f_m + offset, span)}
    if "cryostat" in lab.roles:
        measured["mxc_temperature"] = lab.cryostat.mxc_temperature
    pairs = _Sequential(run, measured, operating, min_readings, n_add_rel, precision)
    setpoint = pump_setpoint(lab, settle_s, settle_window_s=settle_window_s,
                             settle_rel=settle_rel, after=pairs.new_power)
    data = run.sweep2d(STEP, setpoint, planned, pairs.reading, np.arange(readings),
                       pairs.measured, description="added noise vs pump power")
    laser.safe_state()

    # -- analysis ------------------------------------------------------------------------------
    chip_w = on_chip_peak_w(np.nanmean(data["monitor_power"], axis=1), priors.chip_per_monitor, duty)
    # the microwave mode as each pump leaves it (efficiency_vs_pump's power law, physics.md §1.2);
    # C = P L / P_C1 holds for the pump-off linewidth, C kappa_m(P) = C_rest kappa_m,0
    modes = [pumped_mode(run, priors, float(p)) for p in chip_w]
    coop = np.array([p * factor / p_c1.value * rates.kappa_m_hz / m.rates.kappa_m_hz
                     for p, m in zip(chip_w, modes, strict=True)])
    n_line, warm_line = line_occupancy(run)
    taken = np.isfinite(data["psd_on"]) & np.isfinite(data["psd_off"])  # pairs not skipped
    pairs_w = [(dbm_to_w(data["psd_on"][i][taken[i]]), dbm_to_w(data["psd_off"][i][taken[i]]))
               for i in range(planned.size)]
    scatter, scatter_dof = pooled_ratio_scatter(pairs_w)
    rows = [_analyse(on_w, off_w, f_m, offset, t_n, float(coop[i]), modes[i].rates, -delta_p,
                     modes[i].delta_m_hz, n_line, scatter if scatter_dof >= MIN_SCATTER_DOF else None)
            for i, (on_w, off_w) in enumerate(pairs_w)]
    i_op = int(np.argmin(np.abs(planned - operating)))
    op = rows[i_op]
    err = _errors(op, float(coop[i_op]), c_rel, modes[i_op].rates, priors.rel_err, -delta_p,
                  modes[i_op].delta_m_hz)
    t_mc = (float(np.nanmean(data["mxc_temperature"][i_op])) if "mxc_temperature" in data
            else math.nan)
    power_rel, power_doubt = on_chip_rel_err(run, priors.rel_err, monitor_averages,
                                             int(np.sum(np.isfinite(data["monitor_power"][i_op]))))
    results = {
        "n_add": Result(op["n_add"], "", err["n_add"]),
        "n_add_o_to_m": Result(op["n_add_o_to_m"], "", err["n_add_o_to_m"]),
        "n_int": Result(op["n_int"], "", err["n_int"]),
        "n_out": Result(op["n_out"], "", op["n_out_err"]),
        "output_gain_db": Result(10 * math.log10(op["gain"]), "dB",
                                 10 / math.log(10) * op["gain_err"] / op["gain"]),
        "pump_power_w": Result(float(chip_w[i_op]), "W", float(chip_w[i_op]) * power_rel),
        "cooperativity": Result(float(coop[i_op]), "", float(coop[i_op]) * c_rel),
        "mxc_temperature_k": Result(t_mc, "K", None),
        "laser_power_w": Result(float(planned[i_op]), "W"),
    }
    flag_all(results, ("pump_power_w",), priors.doubt("chip_per_monitor"), power_doubt)
    flag_all(results, ("n_add", "n_add_o_to_m", "n_int"), precise(
        op["n_add"], err["n_add"], 0.1, "n_add", f"raise {STEP}.readings or esa_averages"))
    few = None if scatter_dof >= MIN_SCATTER_DOF else (
        f"its error rests on {scatter_dof} degree(s) of freedom of the readings' scatter, which "
        f"can come out several times too small: raise {STEP}.min_readings or {STEP}.powers")
    flag_all(results, ("n_add", "n_add_o_to_m", "n_int"), warm_line, few)
    flag_all(results, tuple(results), priors.doubt(*LINEWIDTHS), p_c1.suspect and (
        f"built on suspect efficiency_vs_pump.p_c1_w ({p_c1.suspect})"), modes[i_op].suspect)
    run.record_results(STEP, results)

    n_add = np.array([r["n_add"] for r in rows])
    n_add_err = np.array([r["n_add"] * r["n_out_err"] / r["n_out"] if r["n_out"] > 0 else math.nan
                          for r in rows])
    save_series_plot(
        run.plot_path(STEP),
        [(chip_w, n_add, n_add_err, "o", "n_add m→o = n_int (1 - ηm)/ηm"),
         (chip_w, [r["n_out"] for r in rows], "s", "output occupancy N_m(f_m)")],
        xlabel="on-chip peak pump power (W)", ylabel="photons", title="Added noise vs pump",
        xscale="log",
        note=(f"n_add(m→o) = {op['n_add']:.3f} ± {err['n_add']:.3f}\n"
              f"n_add(o→m) = {op['n_add_o_to_m']:.3f} ± {err['n_add_o_to_m']:.3f}\n"
              f"n_int = {op['n_int']:.3f} at {chip_w[i_op] * 1e3:.4g} mW, C = {coop[i_op]:.3f}\n"
              f"gain {10 * math.log10(op['gain']):.2f} dB (T_N = {t_n:g} K)"))
    return results


class _Sequential:
    """The reading pairs of one power, taken until the result is precise enough.

    The sweep's inner setpoint is the pair's index; once a power's pairs suffice (see the module
    docs) every measured parameter returns NaN without touching an instrument, so the rest of
    the planned grid costs no lab time. Pairs are kept by index: a pair taken again after an
    interlock trip replaces the one it repeats.
    """

    def __init__(self, run, measured: dict[str, Parameter], operating_w: float, least: int,
                 target_rel: float, precision) -> None:
        self._run = run
        self._operating_w = operating_w
        self._least = least
        self._target = target_rel
        self._precision = precision  # (on, off, monitor, earlier) -> relative error of n_add
        self._power = math.nan
        self._index = 0
        self._done = False
        self._taken: dict[str, dict[int, float]] = {name: {} for name in measured}
        # the finished powers' pairs (W), whose scatter the stopping rule pools with its own
        self._earlier: list[tuple[np.ndarray, np.ndarray]] = []
        self.reading = Parameter("reading", label="Reading", unit="", set_cmd=self._next,
                                 get_cmd=False)
        self.measured = {name: Parameter(name, label=p.label, unit=p.unit, set_cmd=False,
                                         get_cmd=self._reader(name, p))
                         for name, p in measured.items()}

    def new_power(self, watts: float) -> None:
        if watts != self._power:
            on, off = (list(self._taken[k].values()) for k in ("psd_on", "psd_off"))
            if on:
                self._earlier.append((dbm_to_w(np.array(on)), dbm_to_w(np.array(off))))
            self._power, self._done = watts, False
            for values in self._taken.values():
                values.clear()

    def _next(self, index: float) -> None:
        self._index = int(index)
        if self._done or self._index < self._least or self._target == 0:
            return
        if not math.isclose(self._power, self._operating_w, rel_tol=1e-9):
            self._done = True  # a point of the curve: the fewest pairs
            return
        on, off, monitor = (list(self._taken[k].values()) for k in
                            ("psd_on", "psd_off", "monitor_power"))
        rel = self._precision(on, off, monitor, self._earlier)
        if rel <= self._target:
            self._done = True
            self._run.event("averaging", f"{STEP}: n_add known to {rel:.1%} after {len(on)} "
                                         f"reading pairs at {self._power * 1e3:.4g} mW; the "
                                         f"remaining pairs not taken")

    def _reader(self, name: str, parameter: Parameter):
        def read() -> float:
            if self._done:
                return math.nan
            value = float(parameter.get())
            self._taken[name][self._index] = value
            return value
        return read


def _analyse(psd_on, psd_off, f_m: float, offset: float, t_n: float, coop: float, rates: Rates,
             delta_o: float, delta_m: float = 0.0, n_line: float = 0.0,
             ratio_scatter: float | None = None) -> dict[str, float]:
    """One power's readings -> N_m, gain, n_int, n_add (the off-resonance occupancy: the line the
    device reflects there and its own tail, computed with the n_int found: two passes). In the
    frame of the pumped mode (``delta_m`` from the pump-off f_m) the readings sit at ``-delta_m``
    and ``offset - delta_m``, the signal mode at ``delta_o - delta_m``."""
    n_int, d_o = 0.0, delta_o - delta_m
    reflected = abs(complex(s_element("m_ex", "m_ex", offset - delta_m, coop, rates, d_o))) ** 2
    for _ in range(2):
        n_off = (n_int * abs(complex(s_element("m_ex", "m_0", offset - delta_m, coop, rates, d_o))) ** 2
                 + n_line * reflected)
        out = output_occupancy(psd_on, psd_off, f_m, f_m + offset, t_n, n_off, ratio_scatter)
        n_int = internal_bath(out.n_out, coop, rates, d_o, offset_hz=-delta_m, n_line=n_line)
    return {"n_out": out.n_out, "n_out_err": out.n_out_err, "gain": out.gain, "gain_err": out.gain_err,
            "n_int": n_int, "n_add": added_noise_of("m->o", n_int, coop, rates, d_o, -delta_m),
            "n_add_o_to_m": added_noise_of("o->m", n_int, coop, rates, d_o, -delta_m)}


def _errors(row: dict[str, float], coop: float, c_rel: float, rates: Rates, rel: dict[str, float],
            delta_o: float, delta_m: float = 0.0) -> dict[str, float]:
    """Standard errors of n_int and n_add: the readings' scatter, C, and the microwave rates
    (each varied by its standard error; contributions added in quadrature)."""
    d_o = delta_o - delta_m

    def derived(n_out: float, c: float, r: Rates) -> dict[str, float]:
        n_int = internal_bath(n_out, c, r, d_o, offset_hz=-delta_m)
        return {"n_int": n_int, "n_add": added_noise_of("m->o", n_int, c, r, d_o, -delta_m),
                "n_add_o_to_m": added_noise_of("o->m", n_int, c, r, d_o, -delta_m)}

    base = derived(row["n_out"], coop, rates)
    bumps = [derived(row["n_out"] + row["n_out_err"], coop, rates),
             derived(row["n_out"], coop * (1 + c_rel), rates)]
    for name in ("kappa_m_hz", "kappa_m_ex_hz", "kappa_o_hz", "kappa_o_ex_hz"):
        if rel.get(name):
            values = {f: getattr(rates, f) for f in ("kappa_o_hz", "kappa_o_ex_hz", "kappa_m_hz",
                                                      "kappa_m_ex_hz")}
            values[name] *= 1 + rel[name]
            values["kappa_o_ex_hz"] = min(values["kappa_o_ex_hz"], values["kappa_o_hz"])
            values["kappa_m_ex_hz"] = min(values["kappa_m_ex_hz"], values["kappa_m_hz"])
            bumps.append(derived(row["n_out"], coop, Rates(**values)))
    return {key: math.sqrt(sum((b[key] - base[key]) ** 2 for b in bumps)) for key in base}

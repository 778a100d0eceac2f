"""Noise-marker readings on the microwave resonance and beside it (line_noise, added_noise).

The analyzer reads the output noise density at f_m and ``off_resonance_offset_hz`` above it,
each from a fresh power-averaged acquisition over 20 RBW; the windows and the RBW are checked
against the analyzer's range and the microwave linewidth before anything is sent.
"""

from __future__ import annotations

import math

from qcodes.parameters import Parameter

from hil.analysis.transducer import Rates
from hil.parameters import Param, ParameterError, check_value, role_range, settable_range, within

OFF_RESONANCE_OFFSET = Param("Hz", (0.0, 1e12), "Offset of the off-resonance reading (at least 5 "
                             "microwave linewidths)", zero="20 microwave linewidths")
ANALYZER_RBW = Param("Hz", role_range("esa", "rbw"), "Analyzer resolution bandwidth (at most "
                     "kappa_m/10)")
ESA_AVERAGES = Param("", within(role_range("esa", "averages"), 1), "Analyzer sweeps averaged per "
                     "reading")


def noise_temperature(step: str, lab) -> float:
    """The output chain's noise temperature (K) from the station's constants."""
    t_n = lab.constants.get("hemt_noise_temp_k")
    if t_n is None or not t_n > 0:
        raise ParameterError(f"{step}: the station {lab.path} needs constants: hemt_noise_temp_k "
                             f"(K, > 0: the output chain's noise temperature from a Y-factor "
                             f"measurement), got {t_n!r}")
    return float(t_n)


def noise_windows(step: str, esa, rates: Rates, f_m_hz: float, off_resonance_offset_hz: float,
                  rbw_hz: float) -> tuple[float, float]:
    """(offset, span) of the on/off-resonance readings: the offset (0: 20 microwave linewidths)
    at least 5 linewidths, the RBW at most kappa_m/10, both windows inside the analyzer."""
    offset = off_resonance_offset_hz or 20 * rates.kappa_m_hz
    check_value(step, "off_resonance_offset_hz", offset, 5 * rates.kappa_m_hz, math.inf,
                "Hz (at least 5 microwave linewidths; 0 = 20)")
    low, high = settable_range(esa.rbw)
    check_value(step, "rbw_hz", rbw_hz, low, min(high, rates.kappa_m_hz / 10),
                "Hz (the analyzer's range, and at most kappa_m/10)")
    span = 20 * rbw_hz
    f_low, f_high = settable_range(esa.start)[0], settable_range(esa.stop)[1]
    for f in (f_m_hz, f_m_hz + offset):
        if not f_low <= f - span / 2 < f + span / 2 <= f_high:
            raise ParameterError(f"{step}: {f:.0f} Hz is outside the analyzer's range "
                                 f"[{f_low:g}, {f_high:g}] Hz; change off_resonance_offset_hz")
    return offset, span


def setup_analyzer(esa, rbw_hz: float, points: int, averages: int) -> None:
    """Noise-friendly settings: power (RMS) averaging of an averaged trace, average detector."""
    esa.use_noise_averaging()
    esa.rbw(rbw_hz)
    esa.points(points)
    esa.averages(averages)


def noise_marker(esa, name: str, frequency_hz: float, span_hz: float) -> Parameter:
    """A noise-density reading (dBm/Hz) at ``frequency_hz`` from a fresh acquisition around it."""

    def read() -> float:
        esa.set_window(frequency_hz - span_hz / 2, frequency_hz + span_hz / 2)
        esa.run_sweep()
        return esa.measure_noise_density(frequency_hz)

    return Parameter(name, label=f"Noise density at {frequency_hz / 1e9:.6f} GHz", unit="dBm/Hz",
                     get_cmd=read, set_cmd=False)

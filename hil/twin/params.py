"""Twin parameters: Profile A of physics.md §4 by default, overridable from a station's ``twin:``.

Keys carry their SI unit in the name; every kappa is a full width in Hz (kappa/2pi), as papers
quote them. A station's ``twin:`` section may name a preset (``profile: B``) and override any key
on top of it::

    twin:
      profile: A              # optional: A (default), B (physics.md §4) or C (Hease 2020)
      seed: 1
      transducer: {f_m_hz, g0_hz, kappa_o_hz, kappa_o_ex_hz, kappa_m_hz, kappa_m_ex_hz,
                   pump_wavelength_m, fsr_mismatch_hz}
      lines: {pump_gain_db, pump_tap_ratio, pump_insertion_loss_db, pump_return_loss_db,
              vna_path_gains_db: [port1_in, port1_out, port2_in, port2_out],
              vna_path_delays_s: [port1_in, port1_out, port2_in, port2_out], hemt_noise_temp_k,
              pump_duty_cycle, pump_pulse_s}
      fridge: {t_base_k, cooling_a_w_per_k2, tau_s, absorbed_fraction, t_still_k,
               still_conductance_w_per_k, t_4k_k, plate_4k_conductance_w_per_k}
      noise: {power_meter_rel, n_floor, heating_a, heating_alpha, heating_p_ref_w, n_line,
              tau_rise_s, tau_fall_s, vna_trace_rel, vna_floor_dbm_per_hz, esa_marker_rel,
              thermometer_rel}
      # imperfections, all off by default (docs/twin.md):
      quasiparticle: {loss_hz_per_w_gamma, shift_hz_per_w_gamma, exponent, tau_rise_s, tau_fall_s}
      readout: {pulse_timing}
      device_heating: {absorbed_fraction, conductance_w_per_k4, tau_s}
      optics: {thermo_shift_hz_per_w, thermo_tau_s, backscatter_hz, kappa_p_hz, kappa_p_ex_hz,
               laser_drift_hz_per_s}
      bias: {mismatch_hz_per_v, leakage_ohm}
      microwave: {atten_4k_db, atten_still_db, atten_mxc_db, ripple_db, ripple_period_hz, hemt_p1db_w}
      timing: {laser_settle_s, power_meter_sample_s, vna_point_s, esa_sweep_factor, thermometer_read_s}

Every key, its unit, default and allowed range is the metadata of its dataclass field below
(:func:`describe` lists them). Unknown keys and unphysical values raise :class:`TwinParamError`
naming the key path and range. Numbers may also come as decimal strings: PyYAML reads ``8.8e9``
(an exponent without sign) as the string "8.8e9".
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any

from hil.twin.optical import SPEED_OF_LIGHT


class TwinParamError(ValueError):
    """A twin parameter is unknown or unphysical; the message names where it came from."""


def _num(default: float, doc: str, *, low: float | None = None, high: float | None = None,
         low_open: bool = True, high_open: bool = True, unit: str = "") -> Any:
    """A numeric field with its allowed range (None = unbounded) kept as field metadata."""
    return field(default=default, metadata={
        "kind": "number", "doc": doc, "low": low, "high": high,
        "low_open": low_open, "high_open": high_open, "unit": unit,
    })


def _quad(default: tuple[float, float, float, float], doc: str, *, low: float | None = None,
          high: float | None = None, unit: str = "") -> Any:
    """A field holding exactly four numbers (one per VNA path), each in [low, high]."""
    return field(default=default, metadata={
        "kind": "quad", "doc": doc, "low": low, "high": high,
        "low_open": False, "high_open": False, "unit": unit,
    })


def _range_text(meta: Mapping[str, Any]) -> str:
    low, high, unit = meta["low"], meta["high"], meta["unit"]
    suffix = f" {unit}" if unit else ""
    if low is None and high is None:
        return "finite"
    if high is None:
        return f"{'>' if meta['low_open'] else '>='} {low:g}{suffix}"
    if low is None:
        return f"{'<' if meta['high_open'] else '<='} {high:g}{suffix}"
    left = "(" if meta["low_open"] else "["
    right = ")" if meta["high_open"] else "]"
    return f"in {left}{low:g}, {high:g}{right}{suffix}"


def _in_range(value: float, meta: Mapping[str, Any]) -> bool:
    if not math.isfinite(value):
        return False
    low, high = meta["low"], meta["high"]
    if low is not None and (value <= low if meta["low_open"] else value < low):
        return False
    return not (high is not None and (value >= high if meta["high_open"] else value > high))


class _Section:
    """Shared validation of a parameter section (a frozen dataclass of `_num` / `_quad` fields)."""

    def check(self, where: str) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            meta = f.metadata
            value = getattr(self, f.name)
            if meta["kind"] == "quad":
                if len(value) != 4:
                    raise TwinParamError(f"{where}.{f.name}: must be a list of 4 numbers "
                                         f"[port1_in, port1_out, port2_in, port2_out], got {value!r}")
                bad = [v for v in value if not _in_range(v, meta)]
                if bad:
                    raise TwinParamError(f"{where}.{f.name}: each entry must be {_range_text(meta)}, "
                                         f"got {list(value)!r}")
            elif meta["kind"] == "flag":
                if value not in (0.0, 1.0):
                    raise TwinParamError(f"{where}.{f.name}: must be 0 (off) or 1 (on), got {value!r}")
            elif not _in_range(value, meta):
                raise TwinParamError(f"{where}.{f.name}: must be {_range_text(meta)}, got {value!r}")
        self._check_relations(where)

    def _check_relations(self, where: str) -> None:
        """Constraints between keys of one section (overridden where there are any)."""


@dataclass(frozen=True)
class TransducerParams(_Section):
    """The electro-optic three-mode device (physics.md §1.3). Profile A: bulk LN WGM + 3D cavity.

    The pump drives the optical mode at ``pump_wavelength_m`` (the pump resonance); the signal mode
    sits one microwave frequency above it, ``f_signal = f_pump_mode + f_m_hz + fsr_mismatch_hz``.
    Pump and signal modes share ``kappa_o_hz`` and ``kappa_o_ex_hz`` (physics.md §4).
    """

    f_m_hz: float = _num(8.8e9, "microwave mode frequency", low=0.0, unit="Hz")
    g0_hz: float = _num(37.0, "single-photon electro-optic coupling g0/2pi", low=0.0, low_open=False,
                        unit="Hz")
    pump_wavelength_m: float = _num(SPEED_OF_LIGHT / 193.4052e12, "vacuum wavelength of the pump mode",
                                    low=1.0e-6, high=2.0e-6, unit="m")
    kappa_o_hz: float = _num(25e6, "optical linewidth kappa_o/2pi (pump and signal modes)", low=0.0,
                             unit="Hz")
    kappa_o_ex_hz: float = _num(7.5e6, "optical external (bus) rate, <= kappa_o_hz", low=0.0, unit="Hz")
    kappa_m_hz: float = _num(10e6, "microwave linewidth kappa_m/2pi", low=0.0, unit="Hz")
    kappa_m_ex_hz: float = _num(5e6, "microwave external (line) rate, <= kappa_m_hz", low=0.0, unit="Hz")
    fsr_mismatch_hz: float = _num(0.0, "signal-mode offset from pump mode + f_m (triple-resonance error)",
                                  unit="Hz")

    def _check_relations(self, where: str) -> None:
        if not self.kappa_o_ex_hz <= self.kappa_o_hz:
            raise TwinParamError(
                f"{where}.kappa_o_ex_hz: must be in (0, kappa_o_hz = {self.kappa_o_hz:g}] Hz, "
                f"got {self.kappa_o_ex_hz!r}"
            )
        if not self.kappa_m_ex_hz <= self.kappa_m_hz:
            raise TwinParamError(
                f"{where}.kappa_m_ex_hz: must be in (0, kappa_m_hz = {self.kappa_m_hz:g}] Hz, "
                f"got {self.kappa_m_ex_hz!r}"
            )


#: Device coupling 0.5 (3.01 dB) plus fibers and feedthroughs 1.0 dB, each way (physics.md §4, A).
_PUMP_PATH_LOSS_DB = 1.0 + 10 * math.log10(2.0)


@dataclass(frozen=True)
class LinesParams(_Section):
    """Optical pump path and the four VNA paths (physics.md §1.8, §3 (c)-(d)).

    Pump path: laser -> fixed-gain amplifier (EDFA) -> monitor tap (``pump_tap_ratio`` to the
    monitor) -> ``pump_insertion_loss_db`` to the chip; the through light returns to the room
    through ``pump_return_loss_db``. Default gain 20 dB takes the laser's 20 mW maximum to 2 W
    ("EDFA to 2 W", physics.md §4), i.e. 0.79 W on chip ~ P_C1 of Profile A.

    VNA paths are power gains in dB of |S|^2 (photon-flux normalised device, so the optical
    path's gains also hold the EOM/photodiode conversion and omega_o/omega_e), in the order
    [port1_in, port1_out, port2_in, port2_out]; port 1 = microwave line, port 2 = optical path.
    The microwave output chain (port1_out) also feeds the spectrum analyzer.

    ``pump_duty_cycle``: the amplified pump is gated into pulses (an AOM after the amplifier).
    Profile A pumps with 1 us pulses at 10 Hz (1e-5, physics.md §4) so that watt-class peaks
    stay within the fridge's cooling power; Profile B is CW (1). Power meters and the mixing
    chamber see the time average, the transducer and its hot bath the peak.
    """

    pump_gain_db: float = _num(20.0, "pump amplifier gain", low=0.0, high=60.0, low_open=False,
                               high_open=False, unit="dB")
    pump_tap_ratio: float = _num(0.01, "fraction of amplified pump sent to the monitor", low=0.0,
                                 high=1.0)
    pump_insertion_loss_db: float = _num(_PUMP_PATH_LOSS_DB, "tap -> on-chip loss (fibers + coupling)",
                                         low=0.0, high=100.0, low_open=False, high_open=False, unit="dB")
    pump_return_loss_db: float = _num(_PUMP_PATH_LOSS_DB, "chip -> through-port detector loss",
                                      low=0.0, high=100.0, low_open=False, high_open=False, unit="dB")
    vna_path_gains_db: tuple[float, float, float, float] = _quad(
        (-60.0, 70.0, -20.0, -10.0), "VNA path power gains", low=-200.0, high=200.0, unit="dB")
    vna_path_delays_s: tuple[float, float, float, float] = _quad(
        (0.0, 0.0, 0.0, 0.0), "VNA path electrical delays", low=0.0, high=1e-3, unit="s")
    hemt_noise_temp_k: float = _num(4.0, "noise temperature of the microwave output chain", low=0.0,
                                    high=1e4, low_open=False, unit="K")
    pump_duty_cycle: float = _num(1e-5, "fraction of time the pump pulses are on (AOM gate)", low=0.0,
                                  high=1.0, high_open=False)
    pump_pulse_s: float = _num(1e-6, "length of one pump pulse (rep. rate = duty / length)", low=0.0,
                               high=10.0, high_open=False, unit="s")

    @property
    def pump_gain(self) -> float:
        return 10 ** (self.pump_gain_db / 10)


@dataclass(frozen=True)
class FridgeParams(_Section):
    """Dilution refrigerator (physics.md §1.6 item 6): T_mc = sqrt(T0^2 + P/a), first order in time.

    Still and 4 K plates are linear: T = t_base + P / conductance, same time constant ``tau_s``
    (simple stand-ins for thermometry; no physics.md anchor).
    """

    t_base_k: float = _num(0.010, "mixing-chamber base temperature T0", low=0.0, high=4.0, unit="K")
    cooling_a_w_per_k2: float = _num(0.05, "mixing-chamber cooling coefficient a (P = a (T^2 - T0^2))",
                                     low=0.0, unit="W/K^2")
    tau_s: float = _num(30.0, "thermal time constant of every stage", low=0.0, low_open=False, unit="s")
    absorbed_fraction: float = _num(0.05, "fraction f_abs of the on-chip pump absorbed at the MXC",
                                    low=0.0, high=1.0, low_open=False, high_open=False)
    t_still_k: float = _num(0.8, "still base temperature", low=0.0, high=10.0, unit="K")
    still_conductance_w_per_k: float = _num(0.02, "still heater power per kelvin of rise", low=0.0,
                                            unit="W/K")
    t_4k_k: float = _num(3.5, "4 K plate base temperature", low=0.0, high=20.0, unit="K")
    plate_4k_conductance_w_per_k: float = _num(1.0, "4 K plate power per kelvin of rise", low=0.0,
                                               unit="W/K")

    def _check_relations(self, where: str) -> None:
        if not self.t_base_k < self.t_still_k < self.t_4k_k:
            raise TwinParamError(
                f"{where}: temperatures must rise t_base_k < t_still_k < t_4k_k, got "
                f"{self.t_base_k:g} K, {self.t_still_k:g} K, {self.t_4k_k:g} K"
            )


@dataclass(frozen=True)
class NoiseParams(_Section):
    """Instrument noise and the microwave-mode hot bath (physics.md §1.5, §1.6).

    ``n_int(P) = n_floor + heating_a (P / heating_p_ref_w)^heating_alpha``, P the on-chip (peak)
    pump power. Profile A: 0.02 + 0.39 (P / P_C1)^0.66 with P_C1 = 0.7658 W kept as a power, so the
    heating stays tied to optical power if g0 is changed. ``n_line`` is the occupancy of the
    microwave input line (0: a cold line). ``tau_rise_s`` / ``tau_fall_s``: hot-bath response to
    pump pulses (physics.md §1.6 item 7).
    """

    power_meter_rel: float = _num(2e-3, "relative power-meter noise per single reading", low=0.0,
                                  high=1.0, low_open=False)
    n_floor: float = _num(0.02, "microwave-mode occupancy floor with the pump off", low=0.0,
                          low_open=False)
    heating_a: float = _num(0.39, "pump-heating amplitude A", low=0.0, low_open=False)
    heating_alpha: float = _num(0.66, "pump-heating exponent alpha", low=0.0, high=3.0, high_open=False)
    heating_p_ref_w: float = _num(0.7658, "pump-heating reference power", low=0.0, unit="W")
    n_line: float = _num(0.0, "occupancy of the microwave input line", low=0.0, low_open=False)
    tau_rise_s: float = _num(0.5e-6, "hot-bath rise time under a pump pulse", low=0.0, unit="s")
    tau_fall_s: float = _num(50e-6, "hot-bath decay time after a pump pulse", low=0.0, unit="s")
    vna_trace_rel: float = _num(1.15e-4, "relative VNA trace noise per point (0.001 dB)", low=0.0,
                                high=1.0, low_open=False)
    vna_floor_dbm_per_hz: float = _num(-140.0, "VNA receiver noise floor", low=-250.0, high=0.0,
                                       unit="dBm/Hz")
    esa_marker_rel: float = _num(0.05, "relative scatter of one noise-marker reading", low=0.0,
                                 high=1.0, low_open=False)
    thermometer_rel: float = _num(1e-3, "relative scatter of one thermometer reading", low=0.0,
                                  high=1.0, low_open=False)


def _flag(doc: str) -> Any:
    """An on/off switch: 0 (off, the default) or 1."""
    return field(default=0.0, metadata={
        "kind": "flag", "doc": doc, "low": 0.0, "high": 1.0,
        "low_open": False, "high_open": False, "unit": "",
    })


@dataclass(frozen=True)
class QuasiparticleParams(_Section):
    """Pump-induced microwave loss and frequency shift (imperfections.md §1, physics.md §1.2).

    Absorbed pump light breaks Cooper pairs: with P the on-chip peak pump power,
    ``kappa_m,0 += loss_hz_per_w_gamma * P^gamma`` and ``f_m -= shift_hz_per_w_gamma * P^gamma``
    at steady state, reached with ``tau_rise_s`` under the pump and left with ``tau_fall_s``
    after it (pulsed: the periodic response of ``lines.pump_pulse_s`` pulses). 0 = off.
    """

    loss_hz_per_w_gamma: float = _num(0.0, "internal-loss increase per (W on chip)^gamma", low=0.0,
                                      low_open=False, unit="Hz/W^gamma")
    shift_hz_per_w_gamma: float = _num(0.0, "microwave frequency drop per (W on chip)^gamma", low=0.0,
                                       low_open=False, unit="Hz/W^gamma")
    exponent: float = _num(1.0, "power-law exponent gamma (0.5 recombination- .. 1 trapping-limited)",
                           low=0.5, high=1.0, low_open=False, high_open=False)
    tau_rise_s: float = _num(1e-6, "quasiparticle rise time under the pump", low=0.0, unit="s")
    tau_fall_s: float = _num(100e-6, "quasiparticle recovery time after the pump", low=0.0, unit="s")


@dataclass(frozen=True)
class ReadoutParams(_Section):
    """How instruments see a pulsed pump (imperfections.md §2).

    ``pulse_timing`` 1: a free-running VNA or spectrum analyser reads the duty-weighted average
    of the pumped (in-pulse) and unpumped device, with the hot bath and the quasiparticles
    following their rise and fall times; one gated on the pulse (instrument setting ``gate``)
    reads the in-pulse average. 0 (off): every reading sees the pumped device in steady state.
    """

    pulse_timing: float = _flag("readings follow the pump's pulse timing (gated or duty-averaged)")


@dataclass(frozen=True)
class DeviceHeatingParams(_Section):
    """Slow heating of the device under the average pump (imperfections.md §3).

    ``T_d -> (T_mc^4 + absorbed_fraction P_avg / conductance)^(1/4)`` with ``tau_s``, and the
    microwave bath takes the thermal occupancy at T_d instead of T_mc. 0 = off.
    """

    absorbed_fraction: float = _num(0.0, "fraction of average on-chip pump heating the device", low=0.0,
                                    high=1.0, low_open=False, high_open=False)
    conductance_w_per_k4: float = _num(1e-3, "device-to-MXC conductance K_d (P = K_d (T_d^4 - T_mc^4))",
                                       low=0.0, unit="W/K^4")
    tau_s: float = _num(10.0, "device thermal time constant", low=0.0, low_open=False, unit="s")


@dataclass(frozen=True)
class OpticsParams(_Section):
    """Optical imperfections of the pump mode and the laser (imperfections.md §4, physics.md §1.7).

    Thermo-optic: the pump mode shifts red by ``thermo_shift_hz_per_w`` per watt of average
    on-chip power times its Lorentzian filling, relaxing with ``thermo_tau_s`` (0: at once).
    ``backscatter_hz``: CW/CCW coupling beta splitting the pump mode into a doublet.
    ``kappa_p_hz`` / ``kappa_p_ex_hz``: the pump mode's own linewidths (0: as the signal mode).
    ``laser_drift_hz_per_s``: the laser frequency walks away from its set point after each tuning.
    """

    thermo_shift_hz_per_w: float = _num(0.0, "thermo-optic red shift per W of average on-chip pump",
                                        low=0.0, low_open=False, unit="Hz/W")
    thermo_tau_s: float = _num(0.0, "thermo-optic time constant", low=0.0, low_open=False, unit="s")
    backscatter_hz: float = _num(0.0, "backscatter coupling beta (doublet split 2 beta)", low=0.0,
                                 low_open=False, unit="Hz")
    kappa_p_hz: float = _num(0.0, "pump-mode linewidth (0: kappa_o_hz)", low=0.0, low_open=False,
                             unit="Hz")
    kappa_p_ex_hz: float = _num(0.0, "pump-mode external rate (0: kappa_o_ex_hz)", low=0.0,
                                low_open=False, unit="Hz")
    laser_drift_hz_per_s: float = _num(0.0, "laser frequency drift after tuning", low=-1e9, high=1e9,
                                       low_open=False, high_open=False, unit="Hz/s")

    def _check_relations(self, where: str) -> None:
        if (self.kappa_p_hz > 0) != (self.kappa_p_ex_hz > 0):
            raise TwinParamError(f"{where}: kappa_p_hz and kappa_p_ex_hz must be set together "
                                 f"(both 0 or both > 0), got {self.kappa_p_hz!r}, {self.kappa_p_ex_hz!r}")
        if not self.kappa_p_ex_hz <= self.kappa_p_hz:
            raise TwinParamError(f"{where}.kappa_p_ex_hz: must be in (0, kappa_p_hz = "
                                 f"{self.kappa_p_hz:g}] Hz, got {self.kappa_p_ex_hz!r}")


@dataclass(frozen=True)
class BiasParams(_Section):
    """DC (Pockels) tuning of the triple resonance by the bias source (imperfections.md §5).

    The signal mode's offset from pump mode + f_m moves by ``mismatch_hz_per_v`` per volt the
    source-measure unit applies (0 V or output off: no shift); it draws ``V / leakage_ohm``.
    """

    mismatch_hz_per_v: float = _num(0.0, "triple-resonance mismatch change per volt", low=-1e10,
                                     high=1e10, low_open=False, high_open=False, unit="Hz/V")
    leakage_ohm: float = _num(1e12, "leakage resistance across the crystal", low=0.0, unit="ohm")


@dataclass(frozen=True)
class MicrowaveLineParams(_Section):
    """Microwave input line and output chain (imperfections.md §7).

    Input line: a 300 K source through attenuators at the 4 K plate, still and mixing chamber,
    each stage adding ``n_th(T_i)(1 - 1/A)``, so the line's occupancy follows those temperatures
    (all 0 dB: off, ``noise.n_line`` as given). Output chain: gain ripple of ``ripple_db``
    (peak) with period ``ripple_period_hz``; HEMT 1 dB compression at input ``hemt_p1db_w``
    (0: off).
    """

    atten_4k_db: float = _num(0.0, "input-line attenuation at the 4 K plate", low=0.0, high=100.0,
                              low_open=False, high_open=False, unit="dB")
    atten_still_db: float = _num(0.0, "input-line attenuation at the still", low=0.0, high=100.0,
                                 low_open=False, high_open=False, unit="dB")
    atten_mxc_db: float = _num(0.0, "input-line attenuation at the mixing chamber", low=0.0, high=100.0,
                               low_open=False, high_open=False, unit="dB")
    ripple_db: float = _num(0.0, "output-chain gain ripple (peak)", low=0.0, high=10.0, low_open=False,
                            high_open=False, unit="dB")
    ripple_period_hz: float = _num(50e6, "output-chain ripple period", low=0.0, unit="Hz")
    hemt_p1db_w: float = _num(0.0, "HEMT input 1 dB compression power (0: off)", low=0.0,
                              low_open=False, high=1.0, high_open=False, unit="W")


@dataclass(frozen=True)
class TimingParams(_Section):
    """Instrument time the virtual clock charges (0: today's behaviour for each).

    The VNA always charges ``points / IFBW`` per sweep (times averages); ``vna_point_s`` adds a
    per-point overhead. The spectrum analyser charges ``points / RBW`` unless
    ``esa_sweep_factor`` k > 0: then a swept analyser's ``k span / RBW^2``.
    """

    laser_settle_s: float = _num(0.0, "laser settle time after each wavelength change", low=0.0,
                                 high=100.0, low_open=False, high_open=False, unit="s")
    power_meter_sample_s: float = _num(0.0, "power-meter time per averaged sample", low=0.0, high=10.0,
                                       low_open=False, high_open=False, unit="s")
    vna_point_s: float = _num(0.0, "VNA per-point overhead on top of 1/IFBW", low=0.0, high=1.0,
                              low_open=False, high_open=False, unit="s")
    esa_sweep_factor: float = _num(0.0, "swept-analyser k of k span / RBW^2 (0: points / RBW)", low=0.0,
                                   high=100.0, low_open=False, high_open=False)
    thermometer_read_s: float = _num(0.0, "Lake Shore scan pause + settle per temperature reading",
                                     low=0.0, high=1000.0, low_open=False, high_open=False, unit="s")


_SECTIONS = ("transducer", "lines", "fridge", "noise", "quasiparticle", "readout", "device_heating",
             "optics", "bias", "microwave", "timing")

#: Named presets (physics.md §4) as overrides of the defaults (which are Profile A).
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "A": {},
    "B": {
        # integrated TFLN, CW; calibrated to Xu 2021's 1.02 % on-chip (15.2 % internal)
        "transducer": {"f_m_hz": 7.0e9, "g0_hz": 750.0, "kappa_o_hz": 200e6, "kappa_o_ex_hz": 50e6,
                       "kappa_m_hz": 3e6, "kappa_m_ex_hz": 0.81e6},
        # CW pump: no amplifier (20 mW laser -> 7.9 mW on chip; P_C1 is 42.9 mW)
        "lines": {"pump_gain_db": 0.0, "pump_duty_cycle": 1.0},
        # n_int = 0.02 + 0.05 (P / 1 mW)^0.5
        "noise": {"n_floor": 0.02, "heating_a": 0.05, "heating_alpha": 0.5, "heating_p_ref_w": 1e-3},
    },
    "C": {
        # Hease et al., PRX Quantum 1, 020315 (2020): bulk LN WGM + Al 3D cavity, 1.48 mW CW,
        # total 0.03 % (internal 0.67 %), bandwidth 10.7 MHz, occupancy 0.025 [V]. g0 36 Hz (u);
        # kappa_m, kappa_o and the couplings are this preset's fit to those headlines (docs/twin.md).
        "transducer": {"f_m_hz": 8.8e9, "g0_hz": 36.0, "kappa_o_hz": 18.24e6, "kappa_o_ex_hz": 4.083e6,
                       "kappa_m_hz": 15.26e6, "kappa_m_ex_hz": 3.052e6},
        # CW, no amplifier: 3.76 mW from the laser puts 1.48 mW on chip
        "lines": {"pump_gain_db": 0.0, "pump_duty_cycle": 1.0},
        # a 0.025 floor on both microwave baths (the line's is a 114 mK bath, imperfections.md §7)
        "noise": {"n_floor": 0.025, "n_line": 0.025, "heating_a": 0.0},
    },
}


@dataclass(frozen=True)
class TwinParams:
    """Everything that makes one simulated lab differ from another."""

    seed: int | None = 1
    transducer: TransducerParams = field(default_factory=TransducerParams)
    lines: LinesParams = field(default_factory=LinesParams)
    fridge: FridgeParams = field(default_factory=FridgeParams)
    noise: NoiseParams = field(default_factory=NoiseParams)
    quasiparticle: QuasiparticleParams = field(default_factory=QuasiparticleParams)
    readout: ReadoutParams = field(default_factory=ReadoutParams)
    device_heating: DeviceHeatingParams = field(default_factory=DeviceHeatingParams)
    optics: OpticsParams = field(default_factory=OpticsParams)
    bias: BiasParams = field(default_factory=BiasParams)
    microwave: MicrowaveLineParams = field(default_factory=MicrowaveLineParams)
    timing: TimingParams = field(default_factory=TimingParams)

    @classmethod
    def profile(cls, name: str) -> TwinParams:
        """A named preset: ``"A"`` (bulk LN, pulsed; the default) or ``"B"`` (TFLN, CW) of
        physics.md §4, or ``"C"`` (Hease et al. 2020, bulk LN, CW)."""
        return cls.from_mapping({"profile": name})

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, where: str = "twin") -> TwinParams:
        """Build from a station's ``twin:`` mapping; unknown keys and bad values are refused."""
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise TwinParamError(f"{where}: must be a mapping of key: value, got {data!r}")
        data = dict(data)
        _refuse_unknown(data, {f.name for f in fields(cls)} | {"profile"}, where)
        params = cls()
        if "profile" in data:
            name = data["profile"]
            if not isinstance(name, str) or name not in PROFILES:
                raise TwinParamError(f"{where}.profile: must be one of {', '.join(PROFILES)}, got {name!r}")
            for section, values in PROFILES[name].items():
                updated = _section_from_mapping(getattr(params, section), values, f"profile {name}.{section}")
                params = replace(params, **{section: updated})
        if "seed" in data:
            seed = data["seed"]
            if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
                raise TwinParamError(f"{where}.seed: must be an integer or null, got {seed!r}")
            params = replace(params, seed=seed)
        for section in _SECTIONS:
            if section in data:
                current = getattr(params, section)
                updated = _section_from_mapping(current, data[section], f"{where}.{section}")
                params = replace(params, **{section: updated})
        params.check(where)
        return params

    def check(self, where: str = "twin") -> None:
        """Validate every section (raises :class:`TwinParamError`)."""
        for section in _SECTIONS:
            getattr(self, section).check(f"{where}.{section}")

    def to_mapping(self) -> dict[str, Any]:
        """Plain nested dict (lists for the VNA paths): feeds back into :meth:`from_mapping`."""
        out = asdict(self)
        for key in ("vna_path_gains_db", "vna_path_delays_s"):
            out["lines"][key] = list(out["lines"][key])
        return out


def describe() -> list[tuple[str, Any, str, str]]:
    """(key path, Profile A default, allowed range, meaning) for every twin key, for docs and CLIs."""
    rows: list[tuple[str, Any, str, str]] = [("seed", 1, "integer or null", "noise seed")]
    defaults = TwinParams()
    for section in _SECTIONS:
        for f in fields(getattr(defaults, section)):
            default = f.default if f.default is not MISSING else None
            rows.append((f"{section}.{f.name}", default, _range_text(f.metadata), f.metadata["doc"]))
    return rows


def _refuse_unknown(data: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(data) - known, key=str)
    if unknown:
        raise TwinParamError(
            f"{where}: unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(sorted(known))}"
        )


#: A plain decimal number. PyYAML (YAML 1.1) reads ``8.8e9`` (no exponent sign) as a *string*,
#: so strings of this form are accepted as numbers.
_NUMBER_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _number(value: Any, where: str) -> float:
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip()):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TwinParamError(f"{where}: must be a number, got {value!r}")
    return float(value)


def _section_from_mapping(current: Any, data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise TwinParamError(f"{where}: must be a mapping of key: value, got {data!r}")
    kinds = {f.name: f.metadata["kind"] for f in fields(current)}
    _refuse_unknown(data, set(kinds), where)
    values: dict[str, Any] = {}
    for key, value in data.items():
        if kinds[key] == "quad":
            if isinstance(value, str | bytes | Mapping) or not hasattr(value, "__len__"):
                raise TwinParamError(f"{where}.{key}: must be a list of 4 numbers "
                                     f"[port1_in, port1_out, port2_in, port2_out], got {value!r}")
            if len(value) != 4:
                raise TwinParamError(f"{where}.{key}: must be a list of 4 numbers "
                                     f"[port1_in, port1_out, port2_in, port2_out], got {len(value)}: "
                                     f"{list(value)!r}")
            values[key] = tuple(_number(v, f"{where}.{key}[{i}]") for i, v in enumerate(value))
        else:
            values[key] = _number(value, f"{where}.{key}")
    return replace(current, **values)

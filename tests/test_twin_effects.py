"""Each imperfection of the twin against the formula or published figure it reproduces.

Every test names its source (physics.md / imperfections.md section) and its tolerance; expected
values come from those formulas and the twin's input parameters, not from the twin's output.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hil.twin import TwinLab
from hil.twin.effects import line_occupancy, pulse_train_response
from hil.twin.microwave import MicrowaveResonator
from hil.twin.noise import amplifier_occupancy
from hil.twin.optical import frequency_to_wavelength, wavelength_to_frequency
from hil.twin.params import TwinParamError, TwinParams
from hil.twin.quanta import photon_energy_j, thermal_occupancy


def _params(**sections) -> TwinParams:
    return TwinParams.from_mapping({"seed": 1, **sections})


def _laser(lab: TwinLab, laser_w: float, offset_hz: float = 0.0) -> None:
    """Laser on, ``offset_hz`` from the (cold) pump mode."""
    f = lab.cavity.frequency_hz + offset_hz
    lab.set_state("pump_laser", "wavelength_m", float(frequency_to_wavelength(f)))
    lab.set_state("pump_laser", "power_w", laser_w)
    lab.set_state("pump_laser", "output", 1.0)


# --- range checks ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("section", "key", "value", "allowed"), [
    ("quasiparticle", "exponent", 2.0, "in [0.5, 1]"),
    ("quasiparticle", "loss_hz_per_w_gamma", -1.0, ">= 0 Hz/W^gamma"),
    ("readout", "pulse_timing", 0.5, "0 (off) or 1 (on)"),
    ("device_heating", "absorbed_fraction", 1.5, "in [0, 1]"),
    ("optics", "thermo_tau_s", -1.0, ">= 0 s"),
    ("microwave", "ripple_db", 20.0, "in [0, 10] dB"),
    ("timing", "laser_settle_s", 1e3, "in [0, 100] s"),
    ("bias", "leakage_ohm", 0.0, "> 0 ohm"),
])
def test_each_effect_key_is_range_checked(section: str, key: str, value: float, allowed: str) -> None:
    with pytest.raises(TwinParamError, match=rf"twin\.{section}\.{key}: must be .*{re_escape(allowed)}"):
        _params(**{section: {key: value}})


def re_escape(text: str) -> str:
    import re
    return re.escape(text)


# --- 1. quasiparticles --------------------------------------------------------------------------
def test_cw_pump_lowers_and_broadens_the_microwave_mode() -> None:
    # physics.md §1.2 (Xu 2022): delta f_m = -b_f P^gamma, kappa_m,0 += b_k P^gamma; the VNA's S11
    # is the Probst reflection of the shifted resonator (S11 = -path x S11_probst). g0 = 0 keeps
    # the conversion out; tolerance 1e-9 relative.
    b_k, b_f, gamma = 2e8, 3e8, 0.5
    params = _params(transducer={"g0_hz": 0.0}, lines={"pump_duty_cycle": 1.0},
                     quasiparticle={"loss_hz_per_w_gamma": b_k, "shift_hz_per_w_gamma": b_f,
                                    "exponent": gamma})
    lab = TwinLab(params)
    _laser(lab, 1e-3)
    p_chip = lab.physics.on_chip_pump_w(1e-3)
    f = np.linspace(8.77e9, 8.83e9, 301)
    s11 = lab.physics.vna_traces(f, 1e-3, float(frequency_to_wavelength(lab.cavity.frequency_hz)))["S11"]
    shifted = MicrowaveResonator(8.8e9 - b_f * p_chip ** gamma, 10e6 + b_k * p_chip ** gamma, 5e6)
    gain = 10 ** ((-60 + 70) / 20)
    np.testing.assert_allclose(s11, -gain * shifted.s11(f), rtol=1e-9)


def test_pulse_train_response_matches_a_time_integration() -> None:
    # physics.md §1.6 item 7: x -> 1 with tau_r in a pulse, -> 0 with tau_f between; the
    # periodic in-pulse and between-pulse means from an explicit integration over 40 periods
    # (1e-4 relative step error expected; tolerance 1e-3).
    pulse, duty, tau_r, tau_f = 1e-6, 0.05, 0.5e-6, 5e-6
    period = pulse / duty
    n = 20000
    dt = period / n
    x = 0.0
    for _ in range(40):
        inside, outside = [], []
        for i in range(n):
            on = i * dt < pulse
            target, tau = (1.0, tau_r) if on else (0.0, tau_f)
            x = target + (x - target) * math.exp(-dt / tau)
            (inside if on else outside).append(x)
    in_mean, off_mean = pulse_train_response(pulse, duty, tau_r, tau_f)
    assert in_mean == pytest.approx(np.mean(inside), rel=1e-3)
    assert off_mean == pytest.approx(np.mean(outside), rel=1e-3)
    assert pulse_train_response(pulse, 1.0, tau_r, tau_f) == (1.0, 0.0)  # CW: steady


def test_pulsed_vna_sees_the_in_pulse_shift_gated_and_the_duty_average_free_running() -> None:
    # imperfections.md §1-2: gated, the mode carries the in-pulse mean of the quasiparticle
    # response; free-running, the VNA reads D S(pulse) + (1 - D) S(gap). Tolerance 1e-9.
    b_f, duty, pulse = 1e9, 0.01, 1e-6
    params = _params(transducer={"g0_hz": 0.0}, lines={"pump_duty_cycle": duty, "pump_pulse_s": pulse},
                     quasiparticle={"shift_hz_per_w_gamma": b_f, "tau_rise_s": 1e-6, "tau_fall_s": 20e-6},
                     readout={"pulse_timing": 1})
    lab = TwinLab(params)
    wavelength = float(frequency_to_wavelength(lab.cavity.frequency_hz))
    p_chip = lab.physics.on_chip_pump_w(1e-3)
    in_mean, off_mean = pulse_train_response(pulse, duty, 1e-6, 20e-6)
    f = np.linspace(8.7e9, 8.9e9, 101)
    gain = 10 ** ((-60 + 70) / 20)

    def s11(fraction: float):
        return -gain * MicrowaveResonator(8.8e9 - b_f * p_chip * fraction, 10e6, 5e6).s11(f)

    gated = lab.physics.vna_traces(f, 1e-3, wavelength, gated=True)["S11"]
    np.testing.assert_allclose(gated, s11(in_mean), rtol=1e-9)
    free = lab.physics.vna_traces(f, 1e-3, wavelength)["S11"]
    np.testing.assert_allclose(free, duty * s11(in_mean) + (1 - duty) * s11(off_mean), rtol=1e-9)


# --- 2. pulsed hot bath in the spectrum analyser -------------------------------------------------
def _esa_occupancy(lab: TwinLab, gated: bool) -> float:
    """n_out at the analyser, PSD / (G h f) - n_amp (physics.md §3 (g)), no DANL."""
    f = 8.8e9
    lab.set_state("esa", "gate", 1.0 if gated else 0.0)
    psd = float(lab.physics.spectrum_psd_w_per_hz(f, lab.laser_emitted_power(),
                                                  float(lab.state("pump_laser", "wavelength_m")),
                                                  danl_dbm_per_hz=None, gated=gated))
    return psd / (10 ** 7 * photon_energy_j(f)) - float(amplifier_occupancy(4.0, f))


def test_gated_and_free_running_analyser_see_the_hot_bath_of_physics_md() -> None:
    # physics.md §1.6 item 7 (computed there): Profile A heating, 1 us pulses at 10 kHz,
    # tau_rise 0.5 us, tau_fall 50 us, n_ss = 0.41 at P_C1: baseline 0.067, end of pulse 0.364.
    # With g0 = 0 and a critically coupled mode, N_m(f_m) = n_int, so the gated analyser reads
    # the in-pulse mean n_ss + (n_base - n_ss) tau_r/t_p (1 - e^{-t_p/tau_r}) and a free-running
    # one D x that + (1 - D) x the gap mean n_floor + (n_end - n_floor) tau_f/t_off (1 - e^{-t_off/tau_f}).
    # Tolerance 2e-3 absolute (physics.md quotes 3 digits).
    params = _params(transducer={"g0_hz": 0.0}, lines={"pump_duty_cycle": 0.01},
                     readout={"pulse_timing": 1})
    lab = TwinLab(params)
    p_c1 = 0.7658
    _laser(lab, p_c1 / lab.physics.pump_path.chip_per_laser)
    n_base, n_end, n_ss, n_floor = 0.067, 0.364, 0.41, 0.02
    t_p, t_off, tau_r, tau_f = 1e-6, 99e-6, 0.5e-6, 50e-6
    in_pulse = n_ss + (n_base - n_ss) * tau_r / t_p * (1 - math.exp(-t_p / tau_r))
    gap = n_floor + (n_end - n_floor) * tau_f / t_off * (1 - math.exp(-t_off / tau_f))
    assert _esa_occupancy(lab, gated=True) == pytest.approx(in_pulse, abs=2e-3)
    assert _esa_occupancy(lab, gated=False) == pytest.approx(0.01 * in_pulse + 0.99 * gap, abs=2e-3)


# --- 3. slow heating of the device --------------------------------------------------------------
def test_device_heats_slowly_and_the_bath_follows_its_temperature() -> None:
    # imperfections.md §3: T_d -> (T_mc^4 + f P_avg / K_d)^(1/4) at first order with tau_d, and
    # n_int = n_floor + n_th(f_m, T_d) (g0 = 0, no pump-heating law). Tolerance 1e-9 relative.
    f_dev, k_d, tau_d = 0.01, 1e-6, 10.0
    params = _params(transducer={"g0_hz": 0.0}, lines={"pump_duty_cycle": 1.0},
                     noise={"heating_a": 0.0},
                     device_heating={"absorbed_fraction": f_dev, "conductance_w_per_k4": k_d, "tau_s": tau_d})
    lab = TwinLab(params)
    _laser(lab, 1e-3)
    p_chip = lab.physics.on_chip_pump_w(1e-3)
    lab.clock.advance(100 * 30.0)  # let the MXC settle under its own share
    t_mxc_ss = lab.physics.fridge.steady_state_mixing_chamber_k()
    t_dev_ss = (t_mxc_ss ** 4 + f_dev * p_chip / k_d) ** 0.25
    assert lab.physics.bath_temperature_k() == pytest.approx(t_dev_ss, rel=1e-9)
    assert _esa_occupancy(lab, gated=True) == pytest.approx(
        0.02 + float(thermal_occupancy(8.8e9, t_dev_ss)), rel=1e-9)
    # switch the pump off: the device cools back at first order with tau_d
    lab.set_state("pump_laser", "output", 0.0)
    lab.clock.advance(tau_d)
    t_mxc = lab.physics.fridge.steady_state_mixing_chamber_k()
    expected = t_mxc + (t_dev_ss - t_mxc) * math.exp(-1.0)
    assert lab.physics.bath_temperature_k() == pytest.approx(expected, rel=1e-9)


# --- 4. optics ------------------------------------------------------------------------------------
def _quiet(**sections) -> TwinParams:
    return _params(noise={"power_meter_rel": 0.0}, lines={"pump_duty_cycle": 1.0}, **sections)


def _transmission(lab: TwinLab, laser_w: float) -> float:
    far = lab.physics.pump_path.through_port_w(laser_w, 1.0)
    return lab.read("power_meter", "power_w") / float(far)


def test_thermal_triangle_and_hysteresis_of_a_slow_sweep() -> None:
    # physics.md §1.7 (computed there): a thermo-optic shift of 6 x kappa/2 at full filling gives
    # max |n_up - n_down| = 0.974 of the peak between a blue->red and a red->blue quasi-static
    # sweep. Filling from the through port: (1 - T)/(1 - T_min). Tolerance 0.01.
    kappa = 25e6
    probe = _quiet(optics={"thermo_shift_hz_per_w": 1.0})
    p_chip = TwinLab(probe).physics.on_chip_pump_w(1e-3)
    lab = TwinLab(_quiet(optics={"thermo_shift_hz_per_w": 3 * kappa / p_chip}))
    t_min = ((17.5e6 - 7.5e6) / 25e6) ** 2
    offsets = np.arange(4 * kappa, -8 * kappa, -kappa / 100)  # blue -> red
    down = []
    for offset in offsets:
        _laser(lab, 1e-3, offset)
        down.append((1 - _transmission(lab, 1e-3)) / (1 - t_min))
    up = []
    for offset in offsets[::-1]:
        _laser(lab, 1e-3, offset)
        up.append((1 - _transmission(lab, 1e-3)) / (1 - t_min))
    down, up = np.array(down), np.array(up[::-1])
    assert np.max(np.abs(down - up)) == pytest.approx(0.974, abs=0.01)
    assert np.argmax(down) > np.argmax(up)  # the triangle stretches to the red on the way down
    assert down.max() == pytest.approx(1.0, abs=0.01)


def test_a_fast_sweep_sees_the_cold_lorentzian_and_waiting_lets_the_mode_shift() -> None:
    # physics.md §1.7 / imperfections.md §4.3: a process acts only if the line-crossing time
    # exceeds its time constant. With tau = 1 s and no time between readings the dip is the cold
    # Lorentzian T = 1 - k0 kex/(D^2 + k^2/4) (tolerance 1e-12); after 30 tau at a fixed laser the
    # shift reaches the steady s = -K P L(D - s) (tolerance 1 kHz).
    params = _quiet(optics={"thermo_shift_hz_per_w": 1e9, "thermo_tau_s": 1.0})
    lab = TwinLab(params)
    p_chip = lab.physics.on_chip_pump_w(1e-3)
    for offset in (20e6, 5e6, 0.0, -5e6):
        _laser(lab, 1e-3, offset)
        cold = 1 - 17.5e6 * 7.5e6 / (offset ** 2 + 25e6 ** 2 / 4)
        assert _transmission(lab, 1e-3) == pytest.approx(cold, abs=1e-12)
    lab.clock.advance(31.0)
    s = lab.physics.thermo_shift_hz()
    offset = -5e6
    assert s == pytest.approx(-1e9 * p_chip * (12.5e6 ** 2) / ((offset - s) ** 2 + 12.5e6 ** 2), abs=1e3)


def test_laser_settle_time_and_drift() -> None:
    # imperfections.md §4.5: the clock is charged the settle time per tuning; afterwards the laser
    # walks at the drift rate, so the through port follows T(D + rate t) (tolerance 1e-12).
    rate = 1e6 / 60  # 1 MHz/min (physics.md §4 instrument defaults)
    lab = TwinLab(_quiet(optics={"laser_drift_hz_per_s": rate}, timing={"laser_settle_s": 0.5}))
    start = lab.clock.now()
    _laser(lab, 1e-3, 3e6)
    assert lab.clock.now() - start == 0.5
    lab.clock.advance(60.0)
    d = 3e6 + rate * 60.5
    assert _transmission(lab, 1e-3) == pytest.approx(1 - 17.5e6 * 7.5e6 / (d ** 2 + 25e6 ** 2 / 4), abs=1e-9)


def test_backscatter_doublet_transmission() -> None:
    # imperfections.md §4.4: t = 1 - (k_ex/2)[chi(D - b) + chi(D + b)], resolved when 2 b > kappa:
    # two dips at +-b. Tolerance 1e-12 on T; dip positions within the 0.1 MHz step.
    beta = 40e6
    lab = TwinLab(_quiet(optics={"backscatter_hz": beta}))
    offsets = np.arange(-80e6, 80e6, 0.1e6)
    values = []
    for d in offsets:
        _laser(lab, 1e-3, d)
        values.append(_transmission(lab, 1e-3))
        chi = [1 / (12.5e6 - 1j * (d - beta)), 1 / (12.5e6 - 1j * (d + beta))]
        assert values[-1] == pytest.approx(abs(1 - 3.75e6 * (chi[0] + chi[1])) ** 2, abs=1e-12)
    values = np.array(values)
    left, right = offsets[:800][np.argmin(values[:800])], offsets[800:][np.argmin(values[800:])]
    assert left == pytest.approx(-beta, abs=0.5e6) and right == pytest.approx(beta, abs=0.5e6)


@pytest.mark.parametrize("kappa_ex", [7.5e6, 17.5e6])
def test_under_and_over_coupled_dips_are_equally_deep(kappa_ex: float) -> None:
    # physics.md §1.1: T_min = ((k0 - kex)/(k0 + kex))^2, symmetric in k0 <-> kex. Tolerance 1e-12.
    lab = TwinLab(_quiet(transducer={"kappa_o_ex_hz": kappa_ex}))
    _laser(lab, 1e-3)
    assert _transmission(lab, 1e-3) == pytest.approx(((25e6 - 2 * kappa_ex) / 25e6) ** 2, abs=1e-12)


def test_pump_mode_linewidth_of_its_own_sets_the_pump_photons() -> None:
    # physics.md §1.3: n_p = k_p,ex/(D^2 + k_p^2/4) P/(hbar w), so C(0) scales by
    # (k_p,ex/k_p^2)/(k_o,ex/k_o^2) and C(D) = C(0)/(1 + 4 D^2/k_p^2). Tolerance 1e-9 relative
    # (1e-6 off resonance, where the photon energy hbar w_L moves by D/w ~ 5e-8).
    ideal = TwinLab(_quiet())
    lab = TwinLab(_quiet(optics={"kappa_p_hz": 50e6, "kappa_p_ex_hz": 20e6}))
    wl = float(frequency_to_wavelength(lab.cavity.frequency_hz))
    c0 = lab.physics.cooperativity(1e-3, wl)
    ratio = (20e6 / 50e6 ** 2) / (7.5e6 / 25e6 ** 2)
    assert c0 == pytest.approx(ideal.physics.cooperativity(1e-3, wl) * ratio, rel=1e-9)
    d = 10e6
    wl_d = float(frequency_to_wavelength(lab.cavity.frequency_hz + d))
    assert lab.physics.cooperativity(1e-3, wl_d) == pytest.approx(c0 / (1 + 4 * d ** 2 / 50e6 ** 2), rel=1e-6)


# --- 5. bias-tuned triple resonance ------------------------------------------------------------
def test_bias_moves_the_signal_mode_and_suppresses_conversion_by_its_lorentzian() -> None:
    # imperfections.md §5 (computed there): with the probe on f_m and low C the converted sideband
    # falls by 1/(1 + (2 delta/kappa_o)^2). k_V V = kappa_o/2 -> 0.5. Tolerance 1 %.
    k_v = 64e6  # Hz/V: TE-TM differential tuning of a bulk z-cut disk, imperfections.md §5
    lab = TwinLab(_params(bias={"mismatch_hz_per_v": k_v}, lines={"pump_duty_cycle": 1.0}))
    wl = float(frequency_to_wavelength(lab.cavity.frequency_hz))

    def eta() -> float:
        s21 = lab.physics.vna_traces(np.array([8.8e9]), 1e-4, wl)["S21"]
        return float(np.abs(s21[0]) ** 2)

    zero = eta()
    lab.set_state("bias_source", "voltage_v", 25e6 / 2 / k_v)
    assert eta() == zero  # output still off: no field across the crystal
    lab.set_state("bias_source", "output", 1.0)
    assert eta() / zero == pytest.approx(0.5, rel=0.01)
    assert lab.read("bias_source", "current_a") == pytest.approx(25e6 / 2 / k_v / 1e12, rel=1e-12)


# --- 6. microwave line and output chain ----------------------------------------------------------
def test_input_line_occupancy_of_an_attenuator_chain() -> None:
    # imperfections.md §7 (computed there): 300 K at 8.8 GHz through 20 dB at 4 K, 20 dB at 100 mK,
    # 20 dB at 10 mK gives 1.7e-3; only 10 dB at the MXC gives 1.7e-2. Tolerance 3 % (2 digits).
    assert line_occupancy(8.8e9, [(20, 4.0), (20, 0.1), (20, 0.01)]) == pytest.approx(1.7e-3, rel=0.03)
    assert line_occupancy(8.8e9, [(20, 4.0), (20, 0.1), (10, 0.01)]) == pytest.approx(1.7e-2, rel=0.03)


def test_twin_line_occupancy_follows_the_fridge() -> None:
    # the same chain at the twin's stage temperatures, and hotter when the MXC heats up
    lab = TwinLab(_params(microwave={"atten_4k_db": 20, "atten_still_db": 20, "atten_mxc_db": 20}))
    temps = lab.physics.fridge.temperatures()
    expected = line_occupancy(8.8e9, [(20, temps["4k"]), (20, temps["still"]), (20, temps["mixing_chamber"])])
    assert lab.physics.line_occupancy() == expected
    lab.set_state("cryostat", "sample_heater_range", 8)
    lab.set_state("cryostat", "sample_heater_mout", 100)
    lab.clock.advance(300.0)
    assert lab.physics.line_occupancy() > 10 * expected


def test_output_gain_ripple_and_hemt_compression() -> None:
    # imperfections.md §7: far off resonance |S11|^2 = G_in G_out 10^(r sin(2 pi f/P)/10); the HEMT
    # is 1 dB down when its input (VNA power x G_in x |S_ee|^2) is P1dB. Tolerance 1e-6 dB.
    p1db = 1e-9
    lab = TwinLab(_params(microwave={"ripple_db": 0.5, "ripple_period_hz": 40e6, "hemt_p1db_w": p1db}))
    f = np.array([7.0e9, 7.01e9, 7.013e9])
    wl = float(lab.state("pump_laser", "wavelength_m"))
    small = lab.physics.vna_traces(f, 0.0, wl, vna_power_w=1e-12)["S11"]
    s_ee = np.abs(lab.physics.transducer.reflection(f, 0.0)) ** 2
    expected_db = 10 + 10 * np.log10(s_ee) + 0.5 * np.sin(2 * np.pi * f / 40e6)
    compress_small = 10 * np.log10(1 + 1e-12 * 1e-6 * s_ee / (p1db / (10 ** 0.1 - 1)))
    np.testing.assert_allclose(20 * np.log10(np.abs(small)), expected_db - compress_small, atol=1e-6)
    at_p1db = lab.physics.vna_traces(f, 0.0, wl, vna_power_w=p1db / 1e-6 / s_ee[0])["S11"]
    assert 20 * np.log10(abs(at_p1db[0])) == pytest.approx(expected_db[0] - 1.0, abs=1e-6)


# --- 7. instrument time ------------------------------------------------------------------------------
def test_virtual_clock_charges_instrument_time() -> None:
    # Each reading costs what the instrument takes: power meter samples x averages; VNA
    # points (1/IFBW + per-point overhead) + retrace, per average; swept analyser k span/RBW^2
    # per average; Lake Shore pause + settle per reading. Exact (virtual clock).
    lab = TwinLab(_params(timing={"power_meter_sample_s": 3e-3, "vna_point_s": 20e-6,
                                  "esa_sweep_factor": 2.5, "thermometer_read_s": 4.0}))
    clock = lab.clock

    def cost(action) -> float:
        start = clock.now()
        action()
        return clock.now() - start

    lab.set_state("power_meter", "averages", 100)
    assert cost(lambda: lab.read("power_meter", "power_w")) == pytest.approx(0.3, rel=1e-12)
    lab.set_state("vna", "averaging", 1)
    lab.set_state("vna", "averages", 3)
    assert cost(lambda: lab.act("vna", "sweep")) == pytest.approx(3 * (201 * (1e-3 + 20e-6) + 1e-3),
                                                                  rel=1e-12)
    lab.set_state("esa", "span_hz", 10e6)
    lab.set_state("esa", "rbw_hz", 1e3)
    lab.set_state("esa", "averages", 2)
    assert cost(lambda: lab.act("esa", "sweep")) == pytest.approx(2 * 2.5 * 10e6 / 1e3 ** 2, rel=1e-12)
    assert cost(lambda: lab.read("cryostat", "mxc_temperature_k")) == 4.0


def test_effects_on_change_readings_only_where_they_act() -> None:
    # A key that only moves the pump mode's thermal state leaves the microwave-only VNA alone
    # when the laser is off (sanity of the fast path, exact).
    ideal, shifted = TwinLab(_params()), TwinLab(_params(optics={"thermo_shift_hz_per_w": 1e9}))
    f = np.linspace(8.75e9, 8.85e9, 11)
    wl = float(wavelength_to_frequency(1550e-9))
    np.testing.assert_array_equal(ideal.physics.vna_traces(f, 0.0, 1550e-9)["S11"],
                                  shifted.physics.vna_traces(f, 0.0, 1550e-9)["S11"])
    assert wl > 0


def test_analyser_gate_reaches_the_twin_through_its_scpi() -> None:
    # imperfections.md §2 over the wire: `:SENS:SWE:EGAT 1` on the N9030B makes the marker read
    # the in-pulse hot bath; free-running it reads the duty average (exact: same twin formulas).
    import pyvisa

    from hil.sim.backend import open_lab
    params = _params(transducer={"g0_hz": 0.0}, lines={"pump_duty_cycle": 0.01},
                     readout={"pulse_timing": 1}, noise={"esa_marker_rel": 0.0})
    lab = TwinLab(params)
    library = open_lab(Path(__file__).parent.parent / "sim_profiles" / "lab.yaml", lab)
    esa = pyvisa.ResourceManager(library).open_resource("TCPIP0::192.168.1.81::hislip0::INSTR")
    esa.read_termination = esa.write_termination = "\n"
    _laser(lab, 0.7658 / lab.physics.pump_path.chip_per_laser)
    assert _esa_occupancy(lab, gated=True) != _esa_occupancy(lab, gated=False)
    for state, expected in (("1", True), ("0", False)):
        esa.write(f":SENS:SWE:EGAT {state}")
        assert lab.state("esa", "gate") == float(state)
        marker = float(lab.state("esa", "marker_hz"))
        psd = float(lab.physics.spectrum_psd_w_per_hz(marker, lab.laser_emitted_power(),
                                                      float(lab.state("pump_laser", "wavelength_m")),
                                                      gated=expected))
        assert lab.read("esa", "noise_density_w_per_hz") == psd

"""Twin parameters: defaults (Profile A), Profile B preset, station overrides and refusals (physics.md §4)."""

from __future__ import annotations

import math

import pytest
import yaml

from hil.twin import TwinLab
from hil.twin.params import PROFILES, TwinParamError, TwinParams, describe


def test_defaults_are_profile_a() -> None:
    """physics.md §4 Profile A: f_m 8.8 GHz, g0 37 Hz, kappa_o 25/7.5 MHz, kappa_m 10/5 MHz, pump
    193.4052 THz; n_int 0.02 + 0.39 (P/0.7658 W)^0.66; f_abs 0.05, T0 10 mK, a 0.05 W/K^2."""
    p = TwinParams()
    assert p == TwinParams.profile("A")
    t = p.transducer
    assert (t.f_m_hz, t.g0_hz, t.kappa_o_hz, t.kappa_o_ex_hz, t.kappa_m_hz, t.kappa_m_ex_hz) == (
        8.8e9, 37.0, 25e6, 7.5e6, 10e6, 5e6)
    assert 299_792_458.0 / t.pump_wavelength_m == pytest.approx(193.4052e12, rel=1e-12)
    n = p.noise
    assert (n.n_floor, n.heating_a, n.heating_alpha, n.heating_p_ref_w) == (0.02, 0.39, 0.66, 0.7658)
    assert (n.tau_rise_s, n.tau_fall_s) == (0.5e-6, 50e-6)
    f = p.fridge
    assert (f.t_base_k, f.cooling_a_w_per_k2, f.absorbed_fraction) == (0.010, 0.05, 0.05)
    lines = p.lines
    assert lines.pump_gain_db == 20.0 and lines.pump_tap_ratio == 0.01
    assert lines.pump_insertion_loss_db == pytest.approx(1.0 + 10 * math.log10(2), rel=1e-12)
    assert lines.vna_path_gains_db == (-60.0, 70.0, -20.0, -10.0)


def test_profile_b_preset() -> None:
    """physics.md §4 Profile B: f_m 7.0 GHz, g0 750 Hz, kappa_o 200/50 MHz, kappa_m 3/0.81 MHz,
    n_int 0.02 + 0.05 (P/1 mW)^0.5; loadable by name from a station and overridable on top."""
    b = TwinParams.profile("B")
    t = b.transducer
    assert (t.f_m_hz, t.g0_hz, t.kappa_o_hz, t.kappa_o_ex_hz, t.kappa_m_hz, t.kappa_m_ex_hz) == (
        7.0e9, 750.0, 200e6, 50e6, 3e6, 0.81e6)
    assert (b.noise.heating_a, b.noise.heating_alpha, b.noise.heating_p_ref_w) == (0.05, 0.5, 1e-3)
    station = TwinParams.from_mapping({"profile": "B", "seed": 3, "transducer": {"g0_hz": 800.0}})
    assert station.transducer.g0_hz == 800.0 and station.transducer.kappa_o_hz == 200e6
    assert station.seed == 3
    assert set(PROFILES) == {"A", "B", "C"}


def test_station_yaml_overrides() -> None:
    """The contract keys of the twin: section, read from YAML, land in the right places."""
    text = """
    seed: 1
    transducer: {f_m_hz: 7.5e9, g0_hz: 40, kappa_o_hz: 30.0e6, kappa_o_ex_hz: 10.0e6,
                 kappa_m_hz: 8.0e6, kappa_m_ex_hz: 6.0e6, pump_wavelength_m: 1.5502e-6}
    lines: {pump_gain_db: 17, pump_tap_ratio: 0.05, pump_insertion_loss_db: 5,
            vna_path_gains_db: [-65, 68.5, -22, -8]}
    fridge: {t_base_k: 0.012, cooling_a_w_per_k2: 0.03, tau_s: 120}
    noise: {power_meter_rel: 0.001, n_floor: 0.03}
    """
    p = TwinParams.from_mapping(yaml.safe_load(text))
    assert p.transducer.f_m_hz == 7.5e9 and p.transducer.g0_hz == 40.0
    assert p.transducer.pump_wavelength_m == 1.5502e-6
    assert p.lines.vna_path_gains_db == (-65.0, 68.5, -22.0, -8.0)
    assert p.lines.pump_tap_ratio == 0.05
    assert p.fridge.tau_s == 120.0 and p.fridge.t_base_k == 0.012
    assert p.noise.power_meter_rel == 0.001 and p.noise.n_floor == 0.03
    assert TwinParams.from_mapping(p.to_mapping()) == p
    assert TwinParams.from_mapping(None) == TwinParams()


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"transducer": {"kappa_m_hz": -1e6}},
         r"twin\.transducer\.kappa_m_hz: must be > 0 Hz, got -1000000\.0"),
        ({"transducer": {"kappa_m_ex_hz": 12e6}},
         r"twin\.transducer\.kappa_m_ex_hz: must be in \(0, kappa_m_hz"),
        ({"transducer": {"kappa_o_ex_hz": 0.0}}, r"twin\.transducer\.kappa_o_ex_hz: must be > 0 Hz"),
        ({"transducer": {"g0_hz": -3}}, r"twin\.transducer\.g0_hz: must be >= 0 Hz"),
        ({"transducer": {"f_m_hz": float("nan")}}, r"twin\.transducer\.f_m_hz: must be > 0 Hz"),
        ({"transducer": {"pump_wavelength_m": 3e-6}}, r"pump_wavelength_m: must be in \(1e-06, 2e-06\) m"),
        ({"lines": {"pump_tap_ratio": 1.0}}, r"twin\.lines\.pump_tap_ratio: must be in \(0, 1\), got 1\.0"),
        ({"lines": {"pump_tap_ratio": 0}}, r"twin\.lines\.pump_tap_ratio: must be in \(0, 1\)"),
        ({"lines": {"pump_gain_db": 70}}, r"twin\.lines\.pump_gain_db: must be in \[0, 60\] dB"),
        ({"lines": {"pump_insertion_loss_db": -1}}, r"pump_insertion_loss_db: must be in \[0, 100\] dB"),
        ({"lines": {"vna_path_gains_db": [1, 2, 3]}}, r"twin\.lines\.vna_path_gains_db: must be a list of 4"),
        ({"lines": {"vna_path_gains_db": "-60"}}, r"twin\.lines\.vna_path_gains_db: must be a list of 4"),
        ({"lines": {"vna_path_gains_db": [1, 2, "x", 4]}}, r"vna_path_gains_db\[2\]: must be a number"),
        ({"lines": {"vna_path_gains_db": [1, 2, 3, 400]}},
         r"vna_path_gains_db: each entry must be in \[-200"),
        ({"lines": {"vna_path_delays_s": [0, 0, 0, -1e-9]}}, r"vna_path_delays_s: each entry must be in \[0"),
        ({"fridge": {"tau_s": -1}}, r"twin\.fridge\.tau_s: must be >= 0 s"),
        ({"fridge": {"absorbed_fraction": 1.5}}, r"twin\.fridge\.absorbed_fraction: must be in \[0, 1\]"),
        ({"fridge": {"t_base_k": 1.0}}, r"twin\.fridge: temperatures must rise"),
        ({"fridge": {"cooling_a_w_per_k2": 0}}, r"cooling_a_w_per_k2: must be > 0 W/K\^2"),
        ({"noise": {"heating_alpha": 5}}, r"twin\.noise\.heating_alpha: must be in \(0, 3\]"),
        ({"noise": {"n_floor": True}}, r"twin\.noise\.n_floor: must be a number"),
        ({"fridge": {"colour": 1}}, r"twin\.fridge: unknown key\(s\) colour; allowed: "),
        ({"lines": 5}, r"twin\.lines: must be a mapping"),
        ({"profile": "D"}, r"twin\.profile: must be one of A, B, C, got 'D'"),
    ],
)
def test_unphysical_or_unknown_values_are_refused(mapping, message) -> None:
    with pytest.raises(TwinParamError, match=message):
        TwinParams.from_mapping(mapping)


def test_error_names_the_station_file() -> None:
    with pytest.raises(TwinParamError, match=r"stations/x\.yaml: twin\.lines\.pump_tap_ratio"):
        TwinParams.from_mapping({"lines": {"pump_tap_ratio": 2}}, where="stations/x.yaml: twin")


def test_describe_lists_every_key_with_its_range() -> None:
    rows = {key: (default, allowed) for key, default, allowed, _ in describe()}
    for key in ("transducer.f_m_hz", "transducer.g0_hz", "transducer.kappa_m_ex_hz", "lines.pump_gain_db",
                "lines.pump_tap_ratio", "lines.vna_path_gains_db", "fridge.t_base_k",
                "fridge.cooling_a_w_per_k2", "fridge.tau_s", "noise.power_meter_rel", "noise.n_floor"):
        assert key in rows
    assert rows["lines.pump_tap_ratio"] == (0.01, "in (0, 1)")


def test_twin_lab_keeps_working_with_the_extended_parameters() -> None:
    """TwinLab's public API is unchanged: its cavity follows transducer.kappa_o_* of any profile."""
    lab = TwinLab(TwinParams.profile("B"))
    assert lab.truth()["kappa_o_hz"] == 200e6
    lab.set_state("pump_laser", "output", 1.0)
    lab.set_state("pump_laser", "wavelength_m", 1.6e-6)
    # far off resonance: laser x (1 - tap) x insertion and return losses (4.01 dB each), CW
    expected = 1e-3 * (1 - 0.01) * 10 ** (-2 * 4.01 / 10)
    assert lab.read("power_meter", "power_w") == pytest.approx(expected, rel=0.02)

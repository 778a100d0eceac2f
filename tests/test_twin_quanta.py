"""Photon numbers and thermal occupancy against physics.md §1.1 (Meesala check) and §1.5 (n_th table)."""

from __future__ import annotations

import pytest

from hil.twin.quanta import driven_photons, thermal_occupancy, thermal_temperature_k

#: physics.md §1.5, as printed: f (Hz) -> {T (K): n_th}
N_TH_TABLE = {
    5e9: {0.010: "3.79e-11", 0.020: "6.16e-6", 0.050: "0.0083", 0.100: "0.0998", 0.200: "0.431", 1.0: "3.69",
          4.0: "16.2"},
    8e9: {0.010: "2.12e-17", 0.020: "4.60e-9", 0.050: "4.63e-4", 0.100: "0.0220", 0.200: "0.172", 1.0: "2.14",
          4.0: "9.93"},
    10e9: {0.010: "1.44e-21", 0.020: "3.79e-11", 0.050: "6.78e-5", 0.100: "0.0083", 0.200: "0.0998",
           1.0: "1.62", 4.0: "7.84"},
}


def _half_last_digit(printed: str) -> float:
    """Half a unit in the last printed digit of ``printed`` ("4.60e-9" -> 0.005e-9)."""
    mantissa, _, exponent = printed.partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 0.5 * 10.0 ** (-decimals) * 10.0 ** int(exponent or 0)


@pytest.mark.parametrize(("f", "t", "printed"),
                         [(f, t, n) for f, row in N_TH_TABLE.items() for t, n in row.items()])
def test_thermal_occupancy_table(f, t, printed) -> None:
    """§4 acceptance (6): n_th = 1/(exp(hf/k_B T) - 1) reproduces the §1.5 table to its printed
    digits (3 significant digits; 2 where it prints 2), and T(n) inverts n_th(T) to 1e-9."""
    value = thermal_occupancy(f, t)
    assert abs(value - float(printed)) <= _half_last_digit(printed)
    assert thermal_temperature_k(f, value) == pytest.approx(t, rel=1e-9)


def test_zero_temperature_is_empty() -> None:
    assert thermal_occupancy(8e9, 0.0) == 0.0


def test_meesala_photon_number() -> None:
    """§4 acceptance (7): Meesala 2024 SI, 192.02 THz, kappa_ex = kappa_0 = 650 MHz, 83 nW in the
    fiber x 0.27 (waveguide -> lensed fiber) at the device, pump detuned 5.004 GHz -> n = 0.716;
    0.72 +- 0.01, within 10 % of the paper's 0.78."""
    n = driven_photons(83e-9 * 0.27, 192.02e12, 1.3e9, 650e6, 5.004e9)
    assert n == pytest.approx(0.72, abs=0.01)
    assert n == pytest.approx(0.78, rel=0.10)


def test_on_resonance_photons() -> None:
    """§1.1: on resonance n = 4 kappa_ex P / (hbar w kappa^2) (rates in rad/s); Profile A pump mode
    5.96e10 photons/W (§4), 0.2 %."""
    assert driven_photons(1.0, 193.4052e12, 25e6, 7.5e6) == pytest.approx(5.96e10, rel=0.002)

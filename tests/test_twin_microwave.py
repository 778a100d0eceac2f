"""Microwave resonator of the twin against physics.md §1.2 (Probst et al. reflection and notch)."""

from __future__ import annotations

import numpy as np
import pytest

from hil.twin.lines import db_to_ratio
from hil.twin.microwave import MicrowaveResonator
from hil.twin.params import TwinParams
from hil.twin.transducer import EOTransducer

A = MicrowaveResonator.from_params(TwinParams().transducer)  # 8.8 GHz, kappa 10 MHz, ex 5 MHz


@pytest.mark.parametrize(("kappa", "kappa_ex"), [(10e6, 5e6), (10e6, 8e6), (10e6, 2e6), (3e6, 0.81e6)])
def test_reflection_on_resonance_is_2ql_over_qc_minus_1(kappa, kappa_ex) -> None:
    """§1.2: S11(f_r) = 2 Q_L/Q_c - 1 (= 2 kappa_ex/kappa - 1), to 1e-12; Q's from the rates."""
    r = MicrowaveResonator(frequency_hz=8.8e9, kappa_hz=kappa, kappa_ex_hz=kappa_ex)
    assert r.s11(r.frequency_hz) == pytest.approx(2 * r.q_loaded / r.q_coupling - 1, abs=1e-12)
    assert r.s11(r.frequency_hz) == pytest.approx(2 * kappa_ex / kappa - 1, abs=1e-12)
    assert 1 / r.q_loaded == pytest.approx(1 / r.q_internal + 1 / r.q_coupling, rel=1e-12)


def test_reflection_is_lossless_only_through_internal_loss() -> None:
    """§1.2/§0: 1 - |S11|^2 = kappa_0 kappa_ex / (Delta^2 + kappa^2/4) (power balance), to 1e-12;
    with the environment a e^{i alpha} e^{-2 pi i f tau} the magnitude scales by a."""
    f = A.frequency_hz + np.linspace(-50e6, 50e6, 201)
    delta = f - A.frequency_hz
    absorbed = A.kappa_0_hz * A.kappa_ex_hz / (delta ** 2 + A.kappa_hz ** 2 / 4)
    assert np.allclose(1 - np.abs(A.s11(f)) ** 2, absorbed, atol=1e-12)
    env = A.s11(f, a=0.3, alpha=1.0, tau_s=40e-9)
    assert np.allclose(np.abs(env), 0.3 * np.abs(A.s11(f)), atol=1e-12)


def test_reflection_matches_the_transducer_with_the_pump_off() -> None:
    """Probst form (exp(+jwt)) = -conj(S_ee) of the §1.3 matrix at g = 0, to 1e-12."""
    t = EOTransducer.from_params(TwinParams().transducer)
    f = A.frequency_hz + np.linspace(-40e6, 40e6, 81)
    assert np.allclose(A.s11(f), -np.conj(t.reflection(f, 0.0, port="m")), atol=1e-12)


def test_notch_on_resonance() -> None:
    """§1.2 notch: S21(f_r) = 1 - Q_L/|Q_c| (phi = 0), to 1e-12; far off resonance -> 1."""
    assert A.s21_notch(A.frequency_hz) == pytest.approx(1 - A.q_loaded / A.q_coupling, abs=1e-12)
    assert abs(A.s21_notch(A.frequency_hz + 5e9)) == pytest.approx(1.0, abs=1e-5)


def test_one_photon_power_in_reflection() -> None:
    """§1.2: one photon at kappa_m/2pi = 10 MHz, kappa_ex/2pi = 5 MHz, 8.8 GHz (reflection) needs
    ~2e-16 W ~ -127 dBm (+- 0.5 dB); notch needs twice the power; detuning by kappa/2 halves n
    (to 1e-3: the photon energy is the drive's, 5 MHz higher)."""
    p_one = 1.0 / A.photons(1.0)
    assert p_one == pytest.approx(2e-16, rel=0.1)
    assert 10 * np.log10(p_one / 1e-3) == pytest.approx(-127, abs=0.5)
    assert A.photons(1e-15, geometry="notch") == pytest.approx(A.photons(1e-15) / 2, rel=1e-12)
    assert A.photons(1e-15, A.frequency_hz + A.kappa_hz / 2) == pytest.approx(A.photons(1e-15) / 2, rel=1e-3)
    assert db_to_ratio(-60) == pytest.approx(1e-6)


def test_unphysical_resonator_is_refused() -> None:
    with pytest.raises(ValueError, match="kappa_ex_hz"):
        MicrowaveResonator(frequency_hz=8e9, kappa_hz=1e6, kappa_ex_hz=2e6)

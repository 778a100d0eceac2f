"""Optical cavity of the twin against physics.md §1.1 (through-port transmission)."""

from __future__ import annotations

import numpy as np
import pytest

from hil.twin import OpticalCavity, TwinParams
from hil.twin.params import TwinParamError

PROFILE_A = OpticalCavity(frequency_hz=193.4052e12, kappa_hz=25e6, kappa_ex_hz=7.5e6)


def test_transmission_matches_closed_form_of_section_1_1() -> None:
    """T = 1 - k0 kex / (Delta^2 + k^2/4), to 1e-12, at detunings across the line."""
    c = PROFILE_A
    delta = np.linspace(-5, 5, 101) * c.kappa_hz
    expected = 1 - c.kappa_0_hz * c.kappa_ex_hz / (delta ** 2 + c.kappa_hz ** 2 / 4)
    assert np.allclose(c.transmission(c.frequency_hz + delta), expected, atol=1e-12, rtol=0)


def test_profile_a_dip_depth_and_half_width() -> None:
    """T_min = ((k0 - kex)/(k0 + kex))^2 = (10/25)^2 = 0.16; at Delta = k/2, T = 1 - 2 k0 kex / k^2."""
    c = PROFILE_A
    assert c.transmission(c.frequency_hz) == pytest.approx(0.16, abs=1e-12)
    assert c.min_transmission == pytest.approx(0.16, abs=1e-12)
    assert c.transmission(c.frequency_hz + c.kappa_hz / 2) == pytest.approx(0.58, abs=1e-12)


def test_dip_is_symmetric_in_k0_and_kex_and_vanishes_at_critical_coupling() -> None:
    """§1.1: the depth cannot tell under- from over-coupling; critical coupling gives T_min = 0."""
    over = OpticalCavity(frequency_hz=PROFILE_A.frequency_hz, kappa_hz=25e6, kappa_ex_hz=17.5e6)
    delta = np.linspace(-3, 3, 31) * 25e6
    f = PROFILE_A.frequency_hz + delta
    assert np.allclose(over.transmission(f), PROFILE_A.transmission(f), atol=1e-12)
    critical = OpticalCavity(frequency_hz=PROFILE_A.frequency_hz, kappa_hz=20e6, kappa_ex_hz=10e6)
    assert critical.transmission(critical.frequency_hz) == pytest.approx(0.0, abs=1e-15)


def test_unphysical_cavity_is_refused() -> None:
    with pytest.raises(ValueError, match="kappa_ex_hz"):
        OpticalCavity(frequency_hz=193e12, kappa_hz=10e6, kappa_ex_hz=20e6)


def test_twin_parameters_from_a_station_mapping() -> None:
    params = TwinParams.from_mapping({"seed": 7, "transducer": {"kappa_o_hz": 200e6,
                                                                "kappa_o_ex_hz": 50e6}})
    assert params.seed == 7
    assert params.transducer.kappa_o_hz == 200e6


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"colour": 1}, r"twin: unknown key\(s\) colour"),
        ({"transducer": {"kappa_o_hz": -1.0}}, r"twin.transducer.kappa_o_hz: must be > 0"),
        ({"transducer": {"kappa_o_ex_hz": 30e6}}, r"kappa_o_ex_hz: must be in \(0, kappa_o_hz"),
        ({"transducer": {"g_hz": 3}}, r"twin.transducer: unknown key\(s\) g_hz"),
        ({"transducer": {"kappa_o_hz": "wide"}}, r"kappa_o_hz: must be a number"),
        ({"seed": 1.5}, r"twin.seed: must be an integer"),
    ],
)
def test_bad_twin_parameters_are_refused_with_their_key(mapping, message) -> None:
    with pytest.raises(TwinParamError, match=message):
        TwinParams.from_mapping(mapping)

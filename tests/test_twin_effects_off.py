"""With every imperfection off (the TwinParams defaults), the twin reads what the ideal formulas give,
bit for bit: each expected value is rebuilt here from the ideal parts (optical cavity, pump path,
transducer S-matrix, VNA paths, noise model, fridge law) and the lab's seeded noise streams."""

from __future__ import annotations

import math
import random
import zlib

import numpy as np
import pytest

from hil.twin import TwinLab
from hil.twin.lines import PumpPath, VnaPaths
from hil.twin.noise import NoiseModel
from hil.twin.optical import OpticalCavity, wavelength_to_frequency
from hil.twin.params import TwinParams
from hil.twin.physics import active_effects
from hil.twin.transducer import EOTransducer
from hil.units import dbm_to_w


@pytest.mark.parametrize("profile", ["A", "B"])
def test_no_effect_is_on_by_default(profile: str) -> None:
    assert active_effects(TwinParams.profile(profile)) == frozenset()
    timing = TwinParams.profile(profile).timing
    assert (timing.laser_settle_s, timing.power_meter_sample_s, timing.vna_point_s,
            timing.esa_sweep_factor, timing.thermometer_read_s) == (0, 0, 0, 0, 0)


def _pumped_lab(params: TwinParams) -> tuple[TwinLab, float, float]:
    lab = TwinLab(params)
    wavelength = lab.cavity.wavelength_m * (1 + 2e-9)  # a little red of the pump mode
    lab.set_state("pump_laser", "wavelength_m", wavelength)
    lab.set_state("pump_laser", "power_w", 0.01)
    lab.set_state("pump_laser", "output", 1.0)
    return lab, wavelength, 0.01


@pytest.mark.parametrize("profile", ["A", "B"])
def test_readings_with_effects_off_are_the_ideal_formulas(profile: str) -> None:
    params = TwinParams.profile(profile)
    lab, wavelength, laser_w = _pumped_lab(params)
    t, lines, noise = params.transducer, params.lines, params.noise
    path = PumpPath.from_params(lines)
    transducer = EOTransducer.from_params(t)
    cavity = OpticalCavity(transducer.pump_frequency_hz, t.kappa_o_hz, t.kappa_o_ex_hz)
    f_laser = wavelength_to_frequency(wavelength)
    on_chip = float(path.on_chip_w(laser_w))
    detuning = float(f_laser) - transducer.pump_frequency_hz

    # power meter: through-port power x duty, times (1 + rel gauss) from its own stream
    meter = random.Random(f"{params.seed}:power_meter")
    through = float(path.through_port_w(laser_w, cavity.transmission(f_laser))) * lines.pump_duty_cycle
    for _ in range(3):
        expected = through * (1.0 + noise.power_meter_rel * meter.gauss(0.0, 1.0))
        assert lab.read("power_meter", "power_w") == expected

    # VNA: S21 of the transducer through the paths, plus the seeded receiver and trace noise
    lab.set_state("vna", "s_parameter", "S21")
    start = lab.clock.now()
    pairs = lab.trace("vna", "sdata")
    assert lab.clock.now() - start == 201 / 1e3 + 1e-3  # points / IFBW + retrace
    f = np.linspace(8.75e9, 8.85e9, 201)
    ideal = VnaPaths.from_params(lines).two_port(f, transducer.s_matrix(f, on_chip, detuning))
    rng = np.random.default_rng([params.seed, zlib.crc32(b"vna")])
    floor = np.sqrt(dbm_to_w(noise.vna_floor_dbm_per_hz) * 1e3 / 1e-4 / 2)
    sweep = {}
    for name, s in ideal.items():
        sweep[name] = s + (noise.vna_trace_rel * np.abs(s) + floor) * (
            rng.standard_normal(s.size) + 1j * rng.standard_normal(s.size))
    np.testing.assert_array_equal(pairs[0::2], sweep["S21"].real)
    np.testing.assert_array_equal(pairs[1::2], sweep["S21"].imag)

    # spectrum analyser noise marker: G h f (N_m + n_amp) + DANL at the MXC temperature
    model = NoiseModel.from_params(params, transducer)
    t_mxc = lab.physics.fridge.mixing_chamber_k()
    esa = random.Random(f"{params.seed}:esa")
    psd = float(model.output_psd_w_per_hz(8.8e9, on_chip, detuning, t_bath_k=t_mxc,
                                          danl_dbm_per_hz=-160.0))
    assert lab.read("esa", "noise_density_w_per_hz") == psd * (1.0 + noise.esa_marker_rel
                                                              * esa.gauss(0.0, 1.0))
    # the MXC law under the average absorbed pump: T = sqrt(T0^2 + P/a) after many tau
    lab.clock.advance(100 * params.fridge.tau_s)
    absorbed = params.fridge.absorbed_fraction * on_chip * lines.pump_duty_cycle
    assert lab.physics.mixing_chamber_k() == pytest.approx(
        math.sqrt(params.fridge.t_base_k ** 2 + absorbed / params.fridge.cooling_a_w_per_k2), rel=1e-12)

"""QCoDeS' own drivers, unmodified, on our simulation (in process and over TCP).

Readings must be the twin's: the Lake Shore's mixing-chamber temperature is the fridge model's
(and moves when the model is heated), the MXG's settings land in the twin's microwave source.
"""

from __future__ import annotations

import logging

import pytest
from qcodes.instrument_drivers.Keysight import KeysightN5183B, KeysightN9030B
from qcodes.instrument_drivers.Lakeshore import LakeshoreModel372


def test_n5183b_settings_reach_the_twin_and_opc_answers(bench) -> None:
    mw = KeysightN5183B("qc_mw", None, resource=bench.open("mwsource"))
    mw.frequency(6.5e9)
    mw.power(-12.5)
    mw.rf_output("on")
    assert mw.frequency() == pytest.approx(6.5e9)
    assert mw.power() == pytest.approx(-12.5)
    assert mw.rf_output() is True
    assert bench.world.state("mw_source", "frequency_hz") == pytest.approx(6.5e9)
    assert bench.world.state("mw_source", "power_w") == pytest.approx(1e-3 * 10 ** (-1.25))
    assert bench.world.state("mw_source", "output") == 1.0
    assert mw.ask("*OPC?") == "1"
    assert mw.ask("SYST:ERR?") == '+0,"No error"'


def test_ls372_channel_temperature_is_the_fridge_models_and_follows_it(bench) -> None:
    ls = LakeshoreModel372("qc_ls", None, resource=bench.open("fridge"))
    rel = bench.world.params.noise.thermometer_rel
    cold = ls.ch06.temperature()
    assert cold == pytest.approx(bench.world.physics.mixing_chamber_k(), rel=6 * rel)
    # Heat the model (10 mA range, half output, for half an hour of twin time): the reading
    # must follow the model, so it is not a stored value.
    bench.world.set_state("cryostat", "sample_heater_range", 6)
    bench.world.set_state("cryostat", "sample_heater_mout", 50)
    bench.world.clock.sleep(1800)
    warm = ls.ch06.temperature()
    assert warm == pytest.approx(bench.world.physics.mixing_chamber_k(), rel=6 * rel)
    assert warm > 1.5 * cold
    assert isinstance(ls.ch06.sensor_raw(), float)  # SRDG?: answered (a stored resistance)
    assert ls.ch06.sensor_status() == "OK"


def test_ls372_sample_heater_setpoint_range_and_mode_round_trip(bench) -> None:
    ls = LakeshoreModel372("qc_ls", None, resource=bench.open("fridge"))
    heater = ls.sample_heater
    assert (heater.setpoint(), heater.output_range(), heater.mode()) == (0.0, "off", "off")
    heater.setpoint(0.05)
    heater.output_range("1mA")
    heater.mode("closed_loop")
    for parameter in (heater.setpoint, heater.output_range, heater.mode):
        parameter.cache.invalidate()
    assert (heater.setpoint(), heater.output_range(), heater.mode()) == (0.05, "1mA", "closed_loop")
    assert bench.world.state("cryostat", "sample_heater_range") == 4  # RANGE 4 = 1 mA
    assert ls.ask("*ESR?") == "0"  # nothing was refused


def test_n9030b_constructs_and_snapshots_every_parameter(bench, caplog) -> None:
    caplog.set_level(logging.WARNING)
    sa = KeysightN9030B("qc_sa", None, resource=bench.open("esa"))
    snapshot = sa.snapshot(update=True)
    failed = [r.getMessage() for r in caplog.records if "Could not update" in r.getMessage()]
    assert failed == []
    assert "sa" in snapshot["submodules"]
    assert sa.sa.start() == pytest.approx(bench.world.state("esa", "start_hz"))
    sa.sa.stop(8.95e9)
    assert bench.world.state("esa", "stop_hz") == pytest.approx(8.95e9)
    assert sa.ask(":SYST:ERR?") == '+0,"No error"'

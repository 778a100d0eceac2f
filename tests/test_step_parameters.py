"""Declared step parameters: every value of every step is checked from the station file alone,
before the run file exists and before any instrument is opened or any byte is sent."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from pyvisa.resources import MessageBasedResource
from qcodes.instrument import VisaInstrument

from experiments.chain import chain
from hil.calibration import calibration, order
from hil.cli import main
from hil.experiment import Experiment, check_parameters
from hil.parameters import Capabilities, ParameterError, declared

ROOT = Path(__file__).resolve().parent.parent
STATION = ROOT / "stations" / "twin.yaml"


@pytest.fixture
def no_instrument(monkeypatch):
    """Records every instrument opened and every write to any VISA resource."""
    opened: list[str] = []
    written: list[str] = []
    original_init = VisaInstrument.__init__

    def spy_init(self, name, *args, **kwargs):
        opened.append(name)
        original_init(self, name, *args, **kwargs)

    def spy_write(self, message, *args, **kwargs):
        written.append(message)
        raise AssertionError(f"sent {message!r}")

    monkeypatch.setattr(VisaInstrument, "__init__", spy_init)
    monkeypatch.setattr(MessageBasedResource, "write", spy_write)
    return opened, written


@pytest.mark.parametrize(("assignment", "message"), [
    ("added_noise.powers=0", "added_noise: powers must be an integer in [1, 200], got 0 "
                             "(--set added_noise.powers)"),
    ("optical_resonance.center_m=1700e-9", "optical_resonance: center_m must be in [1.48e-06, "
                                           "1.64e-06] m, got 1.7e-06 (--set optical_resonance.center_m)"),
    ("optical_resonance.center_m=nan", "center_m must be in [1.48e-06, 1.64e-06] m, got nan"),
    ("optical_resonance.center_m=inf", "center_m must be in [1.48e-06, 1.64e-06] m, got inf"),
    ("optical_resonance.power_w=1.0", "power_w must be in [3.16228e-05, 0.0199526] W, got 1.0"),
    ("efficiency_vs_pump.vna_power_dbm=5", "vna_power_dbm must be in [-60, 0] dBm, got 5.0"),
])
def test_a_bad_value_for_any_step_is_refused_before_the_run_file_and_any_instrument(
        tmp_path, no_instrument, assignment, message) -> None:
    out = tmp_path / "run.h5"
    result = CliRunner().invoke(main, ["run", "chain", "--out", str(out), "--set", assignment])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
    assert not list(tmp_path.iterdir())  # no run file, no calibration store
    opened, written = no_instrument
    assert opened == [] and written == []


def test_a_bad_station_steps_value_names_the_station_file_and_key(tmp_path, no_instrument) -> None:
    data = yaml.safe_load(STATION.read_text())
    data["steps"] = {"added_noise": {"settle_s": 7200.0}}
    station = tmp_path / "lab.yaml"
    station.write_text(yaml.safe_dump(data))
    out = tmp_path / "run.h5"
    result = CliRunner().invoke(main, ["run", "chain", "--station", str(station), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert (f"added_noise: settle_s must be in [0, 3600] s, got 7200.0 ({station}: "
            f"steps.added_noise.settle_s)") in result.output.replace("\n", "")
    assert not out.exists()
    assert no_instrument == ([], [])


def test_a_station_steps_value_that_is_not_a_number_names_the_file_not_set(tmp_path) -> None:
    data = yaml.safe_load(STATION.read_text())
    data["steps"] = {"optical_resonance": {"power_w": "loud"}}
    station = tmp_path / "lab.yaml"
    station.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=r"lab.yaml: steps.optical_resonance.power_w.*'loud' is "
                                         r"not a valid float") as info:
        check_parameters(Experiment("chain", chain), station, {})
    assert "--set" not in str(info.value)


def test_station_limits_narrow_the_declared_range(tmp_path) -> None:
    """twin.yaml limits the VNA's power_dbm to [-60, 0]: the E5080B's own [-100, 20] narrows."""
    data = yaml.safe_load(STATION.read_text())
    capabilities = Capabilities(data)
    assert capabilities.range("vna", "power_dbm") == (-60.0, 0.0)
    del data["instruments"]["vna"]["parameters"]
    assert Capabilities(data).range("vna", "power_dbm") == (-100.0, 20.0)
    # the laser: 10 mW = 10 dBm limit gives 1e-2 W as the top of the W range
    data["instruments"]["laser"]["parameters"] = {"power_dbm": {"limits": [-15, 10]}}
    assert Capabilities(data).power_w("pump")[1] == pytest.approx(1e-2, rel=1e-12)


def test_defaults_of_every_chain_step_pass_on_the_default_station() -> None:
    params = check_parameters(Experiment("chain", chain), STATION, {})
    assert set(params) == {s.__name__ for s in chain.steps}


def test_every_chain_parameter_is_declared_with_help() -> None:
    for step in chain.steps:
        for name, decl in declared(step).items():
            assert decl.param.help, f"{step.__name__}.{name} has no help text"
            assert decl.param.range is not None, f"{step.__name__}.{name} has no range"


def test_the_chain_runs_its_steps_in_the_order_of_their_needs() -> None:
    names = [s.__name__ for s in Experiment("chain", chain).steps]
    for step in chain.steps:
        for need in getattr(step, "needs", ()):
            assert names.index(need) < names.index(step.__name__)
    # listed backwards, the needs still come first; ties keep the listed order
    reordered = [s.__name__ for s in order(tuple(reversed(chain.steps)))]
    for step in chain.steps:
        for need in getattr(step, "needs", ()):
            assert reordered.index(need) < reordered.index(step.__name__)
    assert order(chain.steps) == order(chain.steps)


def test_a_cycle_or_a_missing_need_is_a_clear_error() -> None:
    @calibration(needs=("b",))
    def a(lab, run): ...

    @calibration(needs=("a",))
    def b(lab, run): ...

    with pytest.raises(ValueError, match="cycle: a -> b -> a"):
        order([a, b])
    with pytest.raises(ValueError, match="step a needs 'b', which is not among the steps"):
        order([a])


def test_hil_list_step_prints_its_parameters() -> None:
    result = CliRunner().invoke(main, ["list", "optical_resonance"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = result.output
    for expected in ("center_m", "float", "m", "1.48e-06", "1.64e-06", "1.55e-06",
                     "Centre of the search window", "fine_averages", "int"):
        assert expected in text


def test_a_parameter_error_is_a_value_error() -> None:
    assert issubclass(ParameterError, ValueError)


def test_what_the_station_file_says_matches_the_opened_instruments() -> None:
    """Every range a driver declares (narrowed by the station's limits) holds the range the
    opened instrument accepts; where no option narrows it at init, the two are the same."""
    from hil.parameters import settable_range
    from hil.station import load_lab

    capabilities = Capabilities(yaml.safe_load(STATION.read_text()))
    lab = load_lab(STATION)
    try:
        checked = 0
        for role, instrument in lab.roles.items():
            for name in getattr(type(instrument), "RANGES", {}):
                declared_low, declared_high = capabilities.range(role, name)
                low, high = settable_range(getattr(instrument, name))
                assert declared_low <= low <= high <= declared_high, (role, name)
                if name not in ("wavelength", "start", "stop"):  # read from the option at init
                    assert (low, high) == pytest.approx((declared_low, declared_high)), (role, name)
                checked += 1
        assert checked >= 15
        assert lab.pump.wavelength_step_m == capabilities.attribute("pump", "wavelength_step_m")
    finally:
        lab.close()


def test_a_relation_between_parameters_names_where_the_values_came_from(tmp_path) -> None:
    out = tmp_path / "run.h5"
    result = CliRunner().invoke(main, ["run", "chain", "--out", str(out),
                                       "--set", "cryostat_check.interval_s=30"],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert ("cryostat_check: duration_s / interval_s must give at least 4 readings, got "
            "duration_s = 60.0 s and interval_s = 30.0 s (--set cryostat_check.interval_s)"
            ) in result.output
    assert not out.exists()


def test_a_station_without_the_role_a_range_needs_is_refused_clearly(tmp_path) -> None:
    data = yaml.safe_load(STATION.read_text())
    del data["roles"]["pump"]
    del data["interlocks"]  # it makes the pump safe
    station = tmp_path / "no_pump.yaml"
    station.write_text(yaml.safe_dump(data))
    with pytest.raises(ParameterError, match="the station has no role 'pump'"):
        check_parameters(Experiment("chain", chain), station, {"optical_resonance": {"step_m": 1e-12}})


def test_a_step_called_directly_checks_its_call_before_any_byte(tmp_path) -> None:
    """The issue's case: optical_resonance with power_w = 1 W used to send SENS:CORR:WAV and
    SENS:AVER:COUN to the meter before the laser refused the power."""
    from exp_support import bare_run, traffic

    from experiments.calibration.optical_resonance import optical_resonance

    with bare_run(STATION, tmp_path) as (lab, run), traffic(lab) as sent:
        with pytest.raises(ParameterError, match=r"optical_resonance: power_w must be in "
                                                 r"\[3.16228e-05, 0.0199526\] W, got 1.0"):
            optical_resonance(lab, run, power_w=1.0)
        assert sent == []

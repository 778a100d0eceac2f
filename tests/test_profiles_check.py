"""`hil profiles check`: every shipped profile answers its driver; a gap is found and named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from hil.cli import main
from hil.profiles import check, models

PROFILES = Path(__file__).resolve().parent.parent / "sim_profiles"


@pytest.mark.parametrize("model", models())
def test_every_shipped_profile_answers_its_driver(model: str) -> None:
    reports = check(model)
    assert reports, f"no driver class found for {model}"
    for report in reports:
        assert report.checked > 0
        assert report.gaps == []


def test_cli_checks_all_models_and_exits_zero() -> None:
    # the parametrized test above checks nothing if discovery finds nothing: pin the models
    assert set(models()) == {"santec_tsl570", "thorlabs_pm100d", "keysight_n5183b",
                             "lakeshore_372", "keysight_e5080b", "keysight_n9030b", "keithley_2450"}
    result = CliRunner().invoke(main, ["profiles", "check"])
    assert result.exit_code == 0, result.output
    for model in models():
        assert model in result.output


def test_a_profile_missing_a_query_is_reported(tmp_path: Path) -> None:
    text = (PROFILES / "thorlabs_pm100d.yaml").read_text()
    assert 'q: "SENS:AVER:COUN?"' in text
    (tmp_path / "thorlabs_pm100d.yaml").write_text(
        text.replace('q: "SENS:AVER:COUN?"', 'q: "SENS:AVER:COUNT?"'))
    [report] = check("thorlabs_pm100d", folder=tmp_path)
    assert not report.ok
    assert any(g.startswith("averages: get (SENS:AVER:COUN?) failed") for g in report.gaps), report.gaps


def test_a_setting_that_does_not_stick_is_reported(tmp_path: Path) -> None:
    text = (PROFILES / "santec_tsl570.yaml").read_text()
    assert 'q: ":POW:SHUT {}"' in text
    shutil.copyfile(PROFILES / "santec_tsl570.yaml", tmp_path / "santec_tsl570.yaml")
    (tmp_path / "santec_tsl570.yaml").write_text(text.replace('q: ":POW:SHUT {}"', 'q: ":POW:SHUTTER {}"'))
    [report] = check("santec_tsl570", folder=tmp_path)
    assert any(g.startswith("shutter_closed: set") for g in report.gaps), report.gaps


def test_unknown_model_is_a_user_error() -> None:
    result = CliRunner().invoke(main, ["profiles", "check", "acme_9000"])
    assert result.exit_code == 2
    assert "unknown model(s) acme_9000" in result.output


# --- hil profiles check --driver: a lab's own driver on the simulation --------------------------
def test_a_third_party_driver_passes_on_the_simulation_of_its_model() -> None:
    result = CliRunner().invoke(main, ["profiles", "check", "--driver",
                                       "qcodes.instrument_drivers.Keysight:KeysightN5183B"])
    assert result.exit_code == 0, result.output
    assert "keysight_n5183b" in result.output and "ok" in result.output


def test_driver_check_names_the_command_a_broken_profile_lacks_with_its_code(tmp_path: Path) -> None:
    text = (PROFILES / "keysight_n5183b.yaml").read_text()
    assert text.count('q: "SOUR:POW:ALC?"') == 1
    (tmp_path / "keysight_n5183b.yaml").write_text(text.replace('q: "SOUR:POW:ALC?"',
                                                                'q: "SOUR:POW:ALCX?"'))
    result = CliRunner().invoke(main, ["profiles", "check", "--driver",
                                       "instruments.keysight_n5183b:KeysightN5183B",
                                       "--model", "keysight_n5183b", "--profiles", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "not understood: 'SOUR:POW:ALC?' -> -113,\"Undefined header\"" in result.output


def test_driver_check_refuses_a_bad_spec_in_one_line() -> None:
    for args in (["--driver", "nonsense"], ["--driver", "no.such.module:Cls"],
                 ["--driver", "qcodes.instrument_drivers.Keysight:NoSuchDriver"],
                 ["--driver", "instruments.keysight_n5183b:KeysightN5183B", "--model", "acme"]):
        result = CliRunner().invoke(main, ["profiles", "check", *args])
        assert result.exit_code == 2, (args, result.output)
        assert result.output.startswith("error:") and "Traceback" not in result.output

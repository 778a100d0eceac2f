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

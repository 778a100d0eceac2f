"""The notebook API end to end on the twin: open a lab once, run a project step, a quick sweep
and a step of the lab's own (defined here), and read everything back, from the returned objects
and from the files. Expected values are the twin's input parameters (``lab.world.truth()``):
Profile A's pump mode at 1550.0744 nm, kappa_o/2pi = 25 MHz (physics.md §4), i.e. a dip
lambda^2 kappa / c = 0.200 pm wide; the fridge's base temperature t_base_k."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Annotated

import numpy as np
import pytest
from exp_support import STATION_A, traffic
from rich.console import Console
from scipy.constants import c as SPEED_OF_LIGHT

import hil
from hil.analysis import fit_dip
from hil.catalog import open_catalog
from hil.experiment import step
from hil.lock import StationBusy, station_lock
from hil.parameters import Param, role_power_w, role_range
from hil.results import Result
from hil.store import open_run

QUIET = {"console": Console(file=io.StringIO())}


@step(valid_for_s=600)
def dip_scan(lab, run, *,
             center_m: Annotated[float, Param("m", role_range("pump", "wavelength"),
                                              "Centre of the scan")] = 1550.0744e-9,
             span_m: Annotated[float, Param("m", (1e-12, 1e-9), "Width of the scan")] = 3e-12,
             power_w: Annotated[float, Param("W", role_power_w("pump"), "Laser power")] = 1e-4,
             ) -> dict[str, Result]:
    """A lab's own step: scan the laser across a dip, fit its centre and width."""
    laser, meter = lab.pump, lab.meter
    grid = laser.wavelength_step_m
    points = np.round(np.arange(center_m - span_m / 2, center_m + span_m / 2, grid) / grid) * grid
    meter.wavelength(center_m)
    laser.power(power_w)
    laser.wavelength(points[0])
    laser.enable_output()
    data = run.sweep("dip_scan", laser.wavelength, points, {"power": meter.power})
    fit = fit_dip(points, data["power"])
    results = {"center_m": Result(fit.center, "m", fit.center_err),
               "fwhm_m": Result(fit.fwhm, "m", fit.fwhm_err)}
    run.record_results("dip_scan", results)
    return results


@pytest.fixture
def lab_env(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("HIL_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.delenv("HIL_CATALOG", raising=False)
    monkeypatch.chdir(tmp_path)  # default run files: runs/ here
    return tmp_path


def test_notebook_api_end_to_end_on_the_twin(lab_env):
    runs = lab_env / "runs"
    with hil.open_lab(STATION_A) as lab:
        truth = lab.world.truth()
        # The station is held: a `hil run` on it now is refused, nothing opened twice.
        with pytest.raises(StationBusy), station_lock(STATION_A, purpose="run"):
            pass

        # A project step by name, on the open lab (hil.runner.execute used to re-open it).
        check = hil.run_step("cryostat_check", lab=lab, duration_s=20.0, interval_s=2.0, **QUIET)
        assert check.status == "completed" and check.path.parent == runs
        t_base = check.results["cryostat_check"]["t_base_k"]
        assert t_base.unit == "K" and abs(t_base.value - truth["t_base_k"]) < 2e-3
        assert check.data()["mxc_temperature"].size == 11

        # A quick sweep: laser on by hand, then across the dip; the run ends with it safe.
        lab.pump.power(1e-4)
        lab.meter.wavelength(truth["optical_wavelength_m"])
        lab.pump.enable_output()
        grid = lab.pump.wavelength_step_m
        sweep = np.round((truth["optical_wavelength_m"] + np.arange(-15, 16) * grid) / grid) * grid
        data = hil.measure(lab.pump.wavelength, sweep, "meter.power", lab.monitor.power, **QUIET)
        through, monitor = data["powermeter_power"], data["monitor_power"]  # both named power
        assert through.attrs["units"] == "W" and monitor.attrs["units"] == "W"
        np.testing.assert_allclose(data["wavelength"].values, sweep)
        dip_at = float(data["wavelength"][np.argmin(through.values)])
        assert abs(dip_at - truth["optical_wavelength_m"]) <= grid
        assert float(monitor.min()) > 0.9 * float(monitor.max())  # the tap is before the chip
        assert not lab.pump.output()  # the measure run ended in the safe state
        on_disk = open_run(data.attrs["run_file"])
        assert on_disk.state == "completed" and on_disk.experiment == "measure"
        np.testing.assert_array_equal(on_disk.steps["measure"]["powermeter_power"].values,
                                      through.values)

        # The lab's own step, defined in this module, with a parameter changed.
        mine = hil.run_step(dip_scan, lab=lab, out=runs / "mine.h5", span_m=4e-12,
                            meta={"operator": "ada"}, **QUIET)
        width = truth["optical_wavelength_m"] ** 2 * truth["kappa_o_hz"] / SPEED_OF_LIGHT
        center, fwhm = mine.results["dip_scan"]["center_m"], mine.results["dip_scan"]["fwhm_m"]
        assert abs(center.value - truth["optical_wavelength_m"]) < grid / 2
        assert fwhm.value == pytest.approx(width, rel=0.15) and fwhm.unit == "m"
        assert mine.metadata["operator"] == "ada"
        # ...read back from the file, and indexed in the catalog as `hil run` would.
        record = open_run(runs / "mine.h5")
        assert record.results["dip_scan"] == mine.results["dip_scan"]
        assert record.steps["dip_scan"]["power"].size == mine.data("dip_scan")["power"].size
        catalog = open_catalog(None, runs)
        try:
            indexed = {Path(e["path"]).name: e for e in catalog.runs()}
        finally:
            catalog.close()
        assert {"mine.h5", check.path.name, Path(data.attrs["run_file"]).name} <= set(indexed)
        assert indexed["mine.h5"]["status"] == "completed"
        assert indexed["mine.h5"]["results"]["dip_scan"]["center_m"]["value"] == center.value

        # In a notebook, a run and its results show as tables with units and reasons.
        page = mine._repr_html_()
        assert "dip_scan" in page and "center_m" in page and "<td>m</td>" in page
        assert "completed" in page and "operator ada" in page
    assert lab._closed
    # Released: the station can be opened again at once.
    with hil.open_lab(STATION_A) as again:
        assert "pump" in again.roles


def test_bad_parameters_are_refused_before_any_file_or_instrument_byte(lab_env):
    with hil.open_lab(STATION_A) as lab, traffic(lab) as sent:
        with pytest.raises(ValueError, match=r"dip_scan: span_m must be in .* got 5e-09"):
            hil.run_step(dip_scan, lab=lab, out=lab_env / "bad.h5", span_m=5e-9, **QUIET)
        with pytest.raises(ValueError, match=r"laser_wavelength = 1.7e-06 m is refused: .*between "
                                             r"1.48e-06 and 1.64e-06"):
            hil.measure(lab.pump.wavelength, [1550e-9, 1700e-9], lab.meter.power,
                        out=lab_env / "bad2.h5", **QUIET)
        with pytest.raises(ValueError, match="no parameter 'nope'"):
            hil.measure("pump.nope", [1550e-9], lab.meter.power, **QUIET)
        assert sent == []
    assert not (lab_env / "bad.h5").exists() and not (lab_env / "bad2.h5").exists()


def test_suspect_results_show_their_reason_in_html():
    table = hil.Results({"step": {"x": Result(1.5, "Hz", 0.1, suspect="fit residuals <b>")}})
    page = table._repr_html_()
    assert "suspect: fit residuals &lt;b&gt;" in page and "<td>Hz</td>" in page
    assert table.suspect() == {"step.x": "fit residuals <b>"}


def test_the_hil_twin_fixture_runs_a_labs_own_step(hil_twin):
    """The fixture as a lab's conftest takes it (tests/conftest.py: pytest_plugins)."""
    done = hil_twin.run(dip_scan)
    truth = hil_twin.lab.world.truth()
    assert done.status == "completed" and done.path.parent == hil_twin.runs
    assert abs(done.results["dip_scan"]["center_m"].value - truth["optical_wavelength_m"]) < 1e-13



@step()
def broken(lab, run) -> None:
    """A step whose analysis fails after it recorded data."""
    lab.pump.enable_output()
    run.sweep("broken", lab.pump.power, [1e-4, 2e-4], {"through": lab.meter.power})
    raise RuntimeError("the fit fell over")


def test_a_failing_step_leaves_the_lab_open_safe_and_its_file_failed(lab_env):
    out = lab_env / "broken.h5"
    with hil.open_lab(STATION_A) as lab:
        with pytest.raises(RuntimeError, match="the fit fell over") as caught:
            hil.run_step(broken, lab=lab, out=out, **QUIET)
        assert f"run file: {out}" in caught.value.__notes__
        assert not lab.pump.output()  # safe state applied at the run's end
        record = open_run(out)
        assert record.status == "failed" and "the fit fell over" in record.traceback
        assert record.steps["broken"]["through"].size == 2
        # measure tells a reading named like the setpoint by its full name
        lab.pump.enable_output()
        ladder = hil.measure(lab.pump.power, [1e-4, 2e-4, 4e-4], lab.meter.power, **QUIET)
        ratio = ladder["powermeter_power"].values / ladder["power"].values
        assert ratio == pytest.approx(ratio[0], rel=0.05)  # linear: off resonance
        again = hil.run_step("cryostat_check", lab=lab, duration_s=8.0, interval_s=2.0, **QUIET)
        assert again.status == "completed"  # the same open lab goes on


def test_a_lab_opened_without_open_lab_takes_the_station_for_each_run(lab_env):
    from hil.station import load_lab

    lab = load_lab(STATION_A)
    try:
        with station_lock(STATION_A, purpose="run"), pytest.raises(StationBusy):
            hil.run_step("cryostat_check", lab=lab, out=lab_env / "busy.h5", **QUIET)
        assert not (lab_env / "busy.h5").exists()
        done = hil.run_step("cryostat_check", lab=lab, duration_s=8.0, interval_s=2.0, **QUIET)
        assert done.status == "completed"
    finally:
        lab.close()

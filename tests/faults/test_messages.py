"""Case 11: messages that say what went wrong, and where, before anything is touched.

(The `steps:` error that named `--set` belongs to the parameter checks, not here.)"""

from __future__ import annotations

import os
import re
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from faults_support import ROOT, TWIN, experiment, quiet, twin_station_file

import hil.experiment
from hil.cli import main
from hil.runner import execute
from hil.station import StationError, load_lab
from hil.store import open_run


def test_out_in_a_folder_that_cannot_be_written_fails_before_the_station_opens(tmp_path):
    folder = Path("/sys")  # read-only even for root
    if os.access(folder, os.W_OK) and not folder.is_dir():
        pytest.skip("no read-only folder on this machine")
    station = tmp_path / "broken.yaml"  # opening it would fail with another message
    station.write_text("instruments:\n  laser:\n    type: nowhere.Laser\n    address: X\n")
    result = CliRunner().invoke(main, ["run", "optical_resonance", "--station", str(station),
                                       "--out", str(folder / "r.h5")])
    assert result.exit_code == 2, result.output
    assert "error: --out /sys/r.h5: cannot write in /sys" in result.stderr
    assert "Traceback" not in result.output


def test_the_limits_error_keeps_its_brackets(tmp_path):
    station = twin_station_file(tmp_path)
    data = yaml.safe_load(station.read_text())
    data["instruments"]["mwsource"]["parameters"]["power"]["limits"] = "low to high"
    station.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(main, ["run", "optical_resonance", "--station", str(station),
                                       "--out", str(tmp_path / "r.h5")])
    assert result.exit_code == 2
    assert "limits: must be [low, high] numbers with low <= high" in result.stderr


def test_a_garbage_reply_names_the_instrument_not_a_codec(tmp_path, monkeypatch):
    def read_through_garbage(lab, run):
        handle = lab.meter.visa_handle
        handle.visalib.inject(handle.resource_name, "garbage")
        run.sweep("reads", lab.pump.power, [1e-4, 2e-4], {"p": lab.meter.power})

    exp = experiment(read_through_garbage)
    monkeypatch.setattr(hil.experiment, "find", lambda name: exp)
    out = tmp_path / "g.h5"
    result = CliRunner().invoke(main, ["run", "x", "--out", str(out)])
    assert result.exit_code == 1
    assert "powermeter: garbled reply" in result.stderr
    assert "codec" not in result.stderr
    assert open_run(out).status == "failed"


class FakeInstrument:
    """A TCP socket instrument that answers *IDN? as a power meter and records every byte."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                self.received += data
                if b"*IDN?" in data:
                    conn.sendall(b"Thorlabs,PM100D,P0012345,1.6.0\r")

    def close(self) -> None:
        self.listener.close()


def test_an_address_that_reaches_another_model_is_refused_after_idn_only(tmp_path):
    fake = FakeInstrument()
    try:
        station = tmp_path / "wrong.yaml"
        station.write_text(yaml.safe_dump({
            "visalib": "@py",
            "instruments": {"laser": {
                "type": "instruments.santec_tsl570.SantecTSL570",
                "address": f"TCPIP0::127.0.0.1::{fake.port}::SOCKET"}},
            "roles": {"pump": "laser"}}))
        with pytest.raises(StationError, match="expected model SantecTSL570, found PM100D"):
            load_lab(station)
        fake.thread.join(5)
        assert fake.received == b"*IDN?\r"  # nothing of the laser's init was sent
    finally:
        fake.close()


NOISE_KEYS = {"power_meter_rel", "vna_trace_rel", "vna_floor_dbm_per_hz", "esa_marker_rel",
              "thermometer_rel"}


def test_the_readme_noiseless_recipe_silences_every_instrument(tmp_path):
    """The recipe in README.md, applied as written: the meter, the VNA, the analyser's marker
    and the thermometer give the same reading twice."""
    readme = (ROOT / "README.md").read_text()
    recipe = re.search(r"noiseless twin \(`twin: (\{.*?\})`\)", readme, re.S)
    assert recipe, "README.md lost its noiseless recipe"
    twin = yaml.safe_load(recipe.group(1))
    assert set(twin["noise"]) == NOISE_KEYS
    base = yaml.safe_load(TWIN.read_text())["twin"]
    station = twin_station_file(tmp_path, twin={**base, **twin})
    lab = load_lab(station)
    try:
        lab.pump.wavelength(1549.9e-9)
        lab.pump.power(1e-3)
        lab.pump.enable_output()
        assert lab.meter.power() == lab.meter.power()
        assert lab.cryostat.mxc_temperature() == lab.cryostat.mxc_temperature()
        vna = lab.vna
        vna.enable_output()
        vna.run_sweep()
        first = np.asarray(vna.trace())
        vna.run_sweep()
        # The receiver floor cannot be zero (the key's range is open at -250 dBm/Hz): at
        # -240 dBm/Hz it is ~1e-9 in |S| units, a part in 1e7 of the transducer's trace.
        np.testing.assert_allclose(np.asarray(vna.trace()), first, rtol=1e-6)
        esa = lab.esa
        esa.run_sweep()
        assert esa.measure_noise_density(esa.center()) == esa.measure_noise_density(esa.center())
    finally:
        lab.close()


def test_an_error_while_ending_never_hides_the_first(tmp_path):
    """The step fails, its `finally` fails too, and the heater will not switch off: the stored
    traceback keeps all three, the first one first."""
    from test_lab_state_known import stick_heater

    def fails_three_ways(lab, run):
        handle = lab.cryostat.visa_handle
        stick_heater(handle.visalib, handle.resource_name)
        lab.cryostat.sample_heater.current_range(1e-3)
        try:
            raise TimeoutError("the first error: a reply that never came")
        finally:
            raise RuntimeError("the second error: in the step's finally")

    out = tmp_path / "e.h5"
    with pytest.raises(RuntimeError, match="second") as caught:
        execute(experiment(fails_three_ways), TWIN, out, {}, console=quiet())
    assert caught.value.unsafe and caught.value.unsafe[0].instrument == "fridge"
    tb = open_run(out).traceback
    first, second = tb.index("the first error"), tb.index("the second error")
    third = tb.index("safe state did not hold: fridge: heaters")
    assert first < second < third

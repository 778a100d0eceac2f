"""Station YAML loading: the twin lab by role, limits that only narrow, and clear user errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hil.station import StationError, load_lab, read_station_file

ROOT = Path(__file__).resolve().parent.parent
TWIN = ROOT / "stations" / "twin.yaml"


def station_variant(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(TWIN.read_text())
    edit(data)
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_twin_station_gives_instruments_by_role() -> None:
    lab = load_lab(TWIN)
    try:
        assert lab.pump.name == "laser"
        assert lab.meter.name == "powermeter"
        assert lab.world is not None
        assert "instruments" in lab.yaml_text
        assert set(lab.snapshot()["instruments"]) == {"laser", "powermeter", "monitor", "mwsource", "fridge",
                                                      "vna", "esa", "bias"}
    finally:
        lab.close()


def test_unknown_role_attribute_names_the_roles_there_are() -> None:
    lab = load_lab(TWIN)
    try:
        with pytest.raises(AttributeError, match="no role 'scope'; it has: pump, meter, monitor"):
            _ = lab.scope
    finally:
        lab.close()


def limited(data: dict) -> None:
    data["instruments"]["laser"].setdefault("parameters", {}).update(power_dbm={"limits": [-15, 10]})


def test_limit_refuses_a_value_before_any_byte_is_sent(tmp_path: Path) -> None:
    lab = load_lab(station_variant(tmp_path, limited))
    try:
        laser = lab.pump
        sent: list[str] = []
        original = laser.visa_handle.write
        laser.visa_handle.write = lambda cmd, *a, **k: (sent.append(cmd), original(cmd, *a, **k))[1]
        laser.power_dbm(5.0)
        assert sent == [":POW 5.00", ":SYST:ERR?"]
        sent.clear()
        with pytest.raises(ValueError, match="power_dbm"):
            laser.power_dbm(12.0)  # within the driver's -15..13 dBm, above the station's 10
        with pytest.raises(ValueError, match="power_dbm"):
            laser.power(0.015)  # 11.8 dBm in watts: the W view obeys the same limit
        assert sent == []
        assert lab.world.state("pump_laser", "power_w") == pytest.approx(10 ** 0.5 * 1e-3)
    finally:
        lab.close()


def test_limits_that_would_widen_the_driver_range_are_refused(tmp_path: Path) -> None:
    path = station_variant(tmp_path, lambda d: d["instruments"]["laser"].setdefault("parameters", {}).update(
        power_dbm={"limits": [-20, 10]}))
    with pytest.raises(StationError, match=r"station.yaml: instruments.laser.parameters.power_dbm"
                                           r".limits: \[-20, 10\] dBm widens the driver's range "
                                           r"\[-15.0, 13.0\] dBm"):
        load_lab(path)


def test_initial_value_is_applied_and_checked(tmp_path: Path) -> None:
    path = station_variant(tmp_path, lambda d: d["instruments"]["laser"].setdefault("parameters", {}).update(
        power_dbm={"limits": [-15, 0], "initial_value": -3}))
    lab = load_lab(path)
    try:
        assert lab.pump.power_dbm() == -3
    finally:
        lab.close()
    bad = station_variant(tmp_path, lambda d: d["instruments"]["laser"].setdefault("parameters", {}).update(
        power_dbm={"limits": [-15, 0], "initial_value": 3}))
    with pytest.raises(StationError, match="power_dbm.initial_value"):
        load_lab(bad)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(colour="red"), r"unknown key\(s\) colour"),
        (lambda d: d["roles"].update(scope="laser"), r"roles.scope: unknown role; known roles: pump"),
        (lambda d: d["roles"].update(pump="lazer"), r"roles.pump: no instrument named 'lazer'"),
        (lambda d: d["instruments"]["laser"].update(type="instruments.nope.Laser"),
         r"instruments.laser.type: cannot import 'instruments.nope.Laser'"),
        (lambda d: d["instruments"]["laser"].pop("address"), r"instruments.laser.address: required"),
        (lambda d: d["instruments"]["laser"].update(address="TCPIP0::10.9.9.9::5000::SOCKET"),
         r"instruments.laser.address: TCPIP0::10.9.9.9::5000::SOCKET is not in the simulated lab"),
        (lambda d: d["instruments"]["laser"].setdefault("parameters", {}).update(colour={"limits": [0, 1]}),
         r"instruments.laser.parameters.colour: laser has no parameter 'colour'"),
        (lambda d: d["twin"].update(transducer={"kappa_o_hz": -5}),
         r"twin.transducer.kappa_o_hz: must be > 0"),
        (lambda d: d["sim"].update(lab="sim_profiles:missing.yaml"), r"sim.lab: .*missing.yaml not found"),
    ],
)
def test_station_mistakes_name_the_file_and_key(tmp_path: Path, edit, message) -> None:
    path = station_variant(tmp_path, edit)
    with pytest.raises(StationError, match=message) as info:
        load_lab(path)
    assert str(path) in str(info.value)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(StationError, match="nothere.yaml: station file not found"):
        read_station_file(tmp_path / "nothere.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("instruments: [unclosed\n")
    with pytest.raises(StationError, match="broken.yaml: not valid YAML"):
        read_station_file(broken)


def test_a_failed_load_leaves_no_instrument_open(tmp_path: Path) -> None:
    from qcodes.instrument import Instrument

    path = station_variant(tmp_path, lambda d: d["instruments"]["powermeter"].update(
        address="USB0::0x1313::0x8078::NOPE::INSTR"))
    with pytest.raises(StationError):
        load_lab(path)
    assert not Instrument.exist("laser")

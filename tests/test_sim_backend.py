"""The twin-coupled sim backend, exercised through the real drivers."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import pyvisa

from hil.sim.backend import ProfileError, open_lab
from hil.twin import TwinLab, TwinParams
from hil.twin.params import NoiseParams
from instruments.santec_tsl570 import SantecTSL570
from instruments.thorlabs_pm100d import ThorlabsPM100D

PROFILES = Path(__file__).resolve().parent.parent / "sim_profiles"
LAB = PROFILES / "lab.yaml"
LASER = "TCPIP0::192.168.1.50::5000::SOCKET"
METER = "USB0::0x1313::0x8078::P0012345::INSTR"


def open_pair(world: TwinLab, lab_file: Path = LAB, suffix: str = ""):
    manager = pyvisa.ResourceManager(open_lab(lab_file, world))
    laser = SantecTSL570(f"laser{suffix}", resource=manager.open_resource(LASER))
    meter = ThorlabsPM100D(f"meter{suffix}", resource=manager.open_resource(METER))
    return laser, meter


def noiseless() -> TwinLab:
    return TwinLab(TwinParams(noise=NoiseParams(power_meter_rel=0.0)))


def test_meter_reads_laser_power_times_cavity_transmission() -> None:
    world = noiseless()
    laser, meter = open_pair(world)
    cavity = world.cavity
    laser.power(1e-3)
    laser.enable_output()
    # laser -> amplifier -> tap -> chip -> back out, averaged over the pump's duty cycle
    path = world.physics.pump_path.through_port_w(1e-3, 1.0) * world.params.lines.pump_duty_cycle
    for offset_pm in (-1.0, -0.1, 0.0, 0.1, 0.3, 5.0):
        laser.wavelength(round(cavity.wavelength_m * 1e9, 4) * 1e-9 + offset_pm * 1e-12)
        set_wavelength = laser.wavelength()
        expected = path * cavity.transmission(299_792_458.0 / set_wavelength)
        # the meter replies with 7 significant digits
        assert meter.power() == pytest.approx(expected, rel=1e-6)


def test_no_light_when_the_laser_is_off_or_its_shutter_closed() -> None:
    world = noiseless()
    laser, meter = open_pair(world)
    laser.power(1e-3)
    assert meter.power() == 0.0  # the profile's laser starts with the diode off
    laser.enable_output()
    assert meter.power() > 0
    laser.shutter_closed(True)
    assert meter.power() == 0.0
    laser.shutter_closed(False)
    laser.safe_state()
    assert meter.power() == 0.0


def test_settings_reach_the_twin_in_si_units() -> None:
    world = noiseless()
    laser, meter = open_pair(world)
    laser.wavelength(1550.1234e-9)
    laser.power_dbm(-3.0)
    meter.averages(25)
    assert world.state("pump_laser", "wavelength_m") == pytest.approx(1550.1234e-9, rel=1e-12)
    assert world.state("pump_laser", "power_w") == pytest.approx(10 ** -0.3 * 1e-3, rel=1e-12)
    assert world.state("power_meter", "averages") == 25


def test_a_refused_set_does_not_reach_the_twin() -> None:
    world = noiseless()
    laser, _ = open_pair(world)
    before = world.state("pump_laser", "wavelength_m")
    with pytest.raises(Exception, match="Data out of range"):
        laser.write(":WAV 1700.0000")  # beyond the profile's spec, below the driver's check
    assert world.state("pump_laser", "wavelength_m") == before


def test_noise_is_seeded_and_averaging_reduces_it() -> None:
    def readings(seed: int, averages: int) -> np.ndarray:
        world = TwinLab(TwinParams(seed=seed))
        laser, meter = open_pair(world, suffix=f"_{seed}_{averages}")
        laser.power(1e-3)
        laser.enable_output()
        meter.averages(averages)
        values = np.array([meter.power() for _ in range(400)])
        laser.close()
        meter.close()
        return values

    a, b = readings(3, 1), readings(3, 1)
    assert np.array_equal(a, b)
    single = np.std(a) / np.mean(a)
    averaged = readings(4, 100)
    # default relative noise 2e-3 per reading, divided by sqrt(averages)
    assert single == pytest.approx(2e-3, rel=0.15)
    assert np.std(averaged) / np.mean(averaged) == pytest.approx(2e-4, rel=0.15)


def test_two_labs_on_one_file_do_not_share_state() -> None:
    world_a, world_b = noiseless(), noiseless()
    laser_a, _ = open_pair(world_a, suffix="_a")
    laser_b, _ = open_pair(world_b, suffix="_b")
    laser_a.wavelength(1551e-9)
    assert laser_b.wavelength() == pytest.approx(1550e-9)
    assert world_b.state("pump_laser", "wavelength_m") == pytest.approx(1550e-9)


def _lab_with_profile_edit(tmp_path: Path, old: str, new: str) -> Path:
    for name in ("lab.yaml", "santec_tsl570.yaml", "thorlabs_pm100d.yaml"):
        shutil.copyfile(PROFILES / name, tmp_path / name)
    profile = tmp_path / "thorlabs_pm100d.yaml"
    text = profile.read_text()
    assert old in text
    profile.write_text(text.replace(old, new))
    return tmp_path / "lab.yaml"


def test_profile_naming_an_unknown_twin_reading_is_refused(tmp_path: Path) -> None:
    lab = _lab_with_profile_edit(tmp_path, "reading: power_w", "reading: power_watts")
    with pytest.raises(ProfileError, match=r"thorlabs_pm100d.yaml: devices.PM100D.properties.power"
                                           r".twin: the twin has no reading power_meter.power_watts"):
        open_lab(lab, noiseless())


def test_profile_with_an_unknown_unit_is_refused(tmp_path: Path) -> None:
    lab = _lab_with_profile_edit(tmp_path, "unit: W", "unit: furlong")
    with pytest.raises(ProfileError, match="unknown unit 'furlong'"):
        open_lab(lab, noiseless())


def test_missing_lab_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="nothere.yaml: lab file not found"):
        open_lab(tmp_path / "nothere.yaml")


VNA = "TCPIP0::192.168.1.80::hislip0::INSTR"
#: Replies queued on the device: text with its LF, a binary block holding LF and CR bytes, a
#: reply without termination (END only), and a second text reply.
QUEUED = [b"1.5E+00,-2.0E-01\n", b"#216\x0a\x00\x0d\xff" + bytes(range(12)) + b"\n", b"no-lf",
          b"+1\n"]


@pytest.mark.parametrize(("count", "termchar_enabled", "suppress_end"), [
    (20 * 1024, True, False),  # pyvisa's usual chunk, reading up to LF
    (20 * 1024, False, False),  # binary reads: END only
    (5, True, False),  # a chunk smaller than the reply
    (7, False, True),  # END suppressed: LF or count end a read
    (64, True, True),
])
def test_reads_end_where_pyvisa_sims_byte_loop_ends_them(count, termchar_enabled, suppress_end):
    """The sim library takes a buffered reply in slices (a 100k-point trace one byte per loop turn
    took seconds); every read must end with the bytes and VISA status pyvisa-sim's own loop gives
    (VPP-4.3 rules 6.1.1-6.1.5: END, termination character, count)."""
    from pyvisa.constants import ResourceAttribute, StatusCode
    from pyvisa.errors import VisaIOError
    from pyvisa_sim.highlevel import SimVisaLibrary

    def reads(library, session, take) -> list[tuple[bytes, StatusCode | str]]:
        device = library.sessions[session].device
        device._output_buffers.extend(bytearray(reply) for reply in QUEUED)
        got = []
        while device._output_buffers:
            try:
                data, status = take(session, count)
            except VisaIOError as exc:  # END suppressed, the last reply has no LF: times out
                data, status = b"", exc.abbreviation
            got.append((bytes(data), status))
        return got

    library = open_lab(LAB, noiseless())
    session, _ = library.open(None, VNA)
    sess = library.sessions[session]
    sess.set_attribute(ResourceAttribute.termchar_enabled, termchar_enabled)
    sess.set_attribute(ResourceAttribute.suppress_end_enabled, suppress_end)
    sess.set_attribute(ResourceAttribute.timeout_value, 50)
    expected = reads(library, session, lambda s, n: SimVisaLibrary.read(library, s, n))
    got = reads(library, session, library.read)
    assert got == expected
    assert {status for _, status in got} - {"VI_ERROR_TMO"} <= {
        StatusCode.success, StatusCode.success_termination_character_read,
        StatusCode.success_max_count_read}


def test_a_large_trace_is_taken_without_the_byte_loop(monkeypatch) -> None:
    """A 100,003-point ASCII trace (the E5080B's most) arrives whole through the driver, and the
    device's one-byte read is never used for it."""
    from pyvisa_sim.devices import Device

    from instruments.keysight_e5080b import KeysightE5080B

    manager = pyvisa.ResourceManager(open_lab(LAB, noiseless()))
    vna = KeysightE5080B("vna_large", resource=manager.open_resource(VNA))
    vna.data_format("ascii")
    vna.points(100003)
    vna.run_sweep()

    def one_byte(self):
        raise AssertionError("byte-by-byte read of a buffered reply")

    monkeypatch.setattr(Device, "read", one_byte)
    trace = vna.trace()
    assert trace.shape == (100003,) and np.all(np.isfinite(trace))

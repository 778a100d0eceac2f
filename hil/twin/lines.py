"""Lines between the instruments and the chip: the optical pump path and the four VNA paths.

Pump path (physics.md §3 (d)): laser -> fixed-gain amplifier -> monitor tap (``tap_ratio`` of the
amplified light to the monitor power meter, the rest on) -> ``insertion_loss_db`` (fibers,
feedthroughs, device coupling) -> chip -> ``return_loss_db`` -> through-port detector.

VNA (DESIGN.md, physics.md §1.8): port 1 = microwave line (in / out), port 2 = optical path
(EOM sideband in, photodiode beat out). The VNA reads the device's photon-flux-normalised S
times the path amplitudes ``sqrt(G_in,j G_out,i) e^{-2 pi i f (tau_in,j + tau_out,i)}``::

    S11 = port1 path x S_ee,  S21 = S_oe (M->O),  S12 = S_eo (O->M),  S22 = S_oo

Measured values use the engineering convention ``exp(+j w t)``: the device's physics-convention
S enters conjugated (as the VNA and the Probst fit forms of :mod:`hil.twin.microwave` expect).
The gains cancel in the bidirectional calibration ``eta = |S21 S12| / |S11 S22|`` when the
reflections are taken where the device reflects fully (far off resonance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hil.twin.params import LinesParams
from hil.twin.transducer import M_EX, O_EX

#: VNA S-parameter -> (output, input) port of the device scattering matrix.
VNA_TO_DEVICE: dict[str, tuple[int, int]] = {
    "S11": (M_EX, M_EX),
    "S21": (O_EX, M_EX),
    "S12": (M_EX, O_EX),
    "S22": (O_EX, O_EX),
}
#: VNA S-parameter -> (input path index, output path index) in [port1_in, port1_out, port2_in, port2_out].
_VNA_PATHS: dict[str, tuple[int, int]] = {"S11": (0, 1), "S21": (0, 3), "S12": (2, 1), "S22": (2, 3)}


def db_to_ratio(db):
    """Power ratio from dB."""
    return 10.0 ** (np.asarray(db, dtype=float) / 10.0)


def ratio_to_db(ratio):
    """dB from a power ratio."""
    return 10.0 * np.log10(np.asarray(ratio, dtype=float))


@dataclass(frozen=True)
class PumpPath:
    """Laser -> amplifier -> monitor tap -> chip -> through-port detector (powers in W)."""

    gain_db: float = 20.0
    tap_ratio: float = 0.01
    insertion_loss_db: float = 1.0 + 10 * math.log10(2.0)
    return_loss_db: float = 1.0 + 10 * math.log10(2.0)

    def __post_init__(self) -> None:
        if not 0 < self.tap_ratio < 1:
            raise ValueError(f"pump tap_ratio must be in (0, 1), got {self.tap_ratio}")
        if not (self.insertion_loss_db >= 0 and self.return_loss_db >= 0):
            raise ValueError("pump path losses must be >= 0 dB")

    @classmethod
    def from_params(cls, p: LinesParams) -> PumpPath:
        return cls(gain_db=p.pump_gain_db, tap_ratio=p.pump_tap_ratio,
                   insertion_loss_db=p.pump_insertion_loss_db, return_loss_db=p.pump_return_loss_db)

    def amplified_w(self, laser_w):
        """After the amplifier: laser power x gain."""
        return np.asarray(laser_w, dtype=float) * db_to_ratio(self.gain_db)

    def monitor_w(self, laser_w):
        """At the monitor arm of the tap: tap_ratio x amplified."""
        return self.tap_ratio * self.amplified_w(laser_w)

    @property
    def chip_per_laser(self) -> float:
        """On-chip power per watt leaving the laser."""
        return float(db_to_ratio(self.gain_db) * (1 - self.tap_ratio) * db_to_ratio(-self.insertion_loss_db))

    @property
    def chip_per_monitor(self) -> float:
        """On-chip power per watt at the monitor: (1 - r)/r x insertion transmission (the lab's
        ``P_device = P_tap x ratio x eta_in``, physics.md §3 (d))."""
        return float((1 - self.tap_ratio) / self.tap_ratio * db_to_ratio(-self.insertion_loss_db))

    def on_chip_w(self, laser_w):
        """Pump power at the device port (W), the P of n_p and of the heating law."""
        return np.asarray(laser_w, dtype=float) * self.chip_per_laser

    def laser_for_on_chip_w(self, on_chip_w):
        """Inverse of :meth:`on_chip_w`: the laser power giving ``on_chip_w`` at the chip."""
        return np.asarray(on_chip_w, dtype=float) / self.chip_per_laser

    def through_port_w(self, laser_w, transmission=1.0):
        """At the through-port detector: on-chip x device transmission x return loss."""
        return self.on_chip_w(laser_w) * np.asarray(transmission, dtype=float) * db_to_ratio(
            -self.return_loss_db)


@dataclass(frozen=True)
class VnaPaths:
    """Power gains (dB) and delays (s) of [port1_in, port1_out, port2_in, port2_out]."""

    gains_db: tuple[float, ...] = (-60.0, 70.0, -20.0, -10.0)
    delays_s: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if len(self.gains_db) != 4 or len(self.delays_s) != 4:
            raise ValueError("VNA paths need 4 gains and 4 delays [port1_in, port1_out, port2_in, port2_out]")

    @classmethod
    def from_params(cls, p: LinesParams) -> VnaPaths:
        return cls(gains_db=tuple(p.vna_path_gains_db), delays_s=tuple(p.vna_path_delays_s))

    def path_amplitude(self, name: str, frequency_hz):
        """Complex amplitude of the chain of S-parameter ``name`` ("S11", "S21", "S12", "S22")."""
        i_in, i_out = _paths(name)
        gain = db_to_ratio(self.gains_db[i_in] + self.gains_db[i_out])
        delay = self.delays_s[i_in] + self.delays_s[i_out]
        return np.sqrt(gain) * np.exp(-2j * np.pi * np.asarray(frequency_hz, dtype=float) * delay)

    def measure(self, name: str, frequency_hz, s_device: np.ndarray):
        """The VNA reading of ``name`` from the device's S (shape frequency.shape + (4, 4))."""
        amplitude = self.path_amplitude(name, frequency_hz)  # refuses an unknown name
        out_port, in_port = VNA_TO_DEVICE[name]
        return amplitude * np.conj(s_device[..., out_port, in_port])

    def two_port(self, frequency_hz, s_device: np.ndarray) -> dict[str, np.ndarray]:
        """All four VNA readings {"S11", "S21", "S12", "S22"}."""
        return {name: self.measure(name, frequency_hz, s_device) for name in VNA_TO_DEVICE}


def _paths(name: str) -> tuple[int, int]:
    try:
        return _VNA_PATHS[name]
    except KeyError:
        raise ValueError(f"VNA S-parameter must be one of {', '.join(_VNA_PATHS)}, got {name!r}") from None


def bidirectional_efficiency(s21, s12, s11_ref, s22_ref):
    """eta_tot = |S21 S12| / |S11 S22| (physics.md §1.8): conversion both ways over the two
    reflections taken where the device reflects fully (|S| = 1, e.g. far off resonance)."""
    return np.abs(np.asarray(s21) * np.asarray(s12)) / np.abs(np.asarray(s11_ref) * np.asarray(s22_ref))

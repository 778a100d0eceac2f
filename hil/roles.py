"""What a step may call on each role, whatever model fills it.

Steps address instruments by role (``lab.pump``, ``lab.meter``), never by model, so a station
can swap a Santec for a Keysight laser without touching a step: everything a step needs from an
instrument is a member of its role here, and the drivers implement it.

What a station's instruments can do is also known without opening them: each driver class
declares ``RANGES`` (parameter name -> (low, high), SI units), which :mod:`hil.parameters`
narrows by the station's ``limits:`` to check step parameters before a run starts.
"""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

from qcodes.parameters import Parameter


@runtime_checkable
class Laser(Protocol):
    """A tunable laser: SI wavelength (m) and power (W), tuned on a grid of ``wavelength_step_m``."""

    RANGES: ClassVar[dict[str, tuple[float, float]]]
    wavelength_step_m: ClassVar[float]
    wavelength: Parameter
    power: Parameter
    power_dbm: Parameter
    output: Parameter

    def enable_output(self) -> None:
        """Start emitting, undoing whatever the safe state closed (shutter, diode)."""
        ...

    def safe_state(self) -> None: ...


@runtime_checkable
class PowerMeter(Protocol):
    """An optical power meter reading watts at a set correction wavelength."""

    RANGES: ClassVar[dict[str, tuple[float, float]]]
    wavelength: Parameter
    power: Parameter
    averages: Parameter

    def safe_state(self) -> None: ...


@runtime_checkable
class MicrowaveSource(Protocol):
    """A CW microwave source: frequency in Hz, power in W (``power_w``; ``power`` is in dBm, the
    instruments' own unit, where station limits sit)."""

    frequency: Parameter
    power: Parameter
    power_w: Parameter
    rf_output: Parameter

    def safe_state(self) -> None: ...


@runtime_checkable
class Cryostat(Protocol):
    """The fridge's thermometry and heaters: the mixing chamber in K, heater power in W.

    ``set_heater_power`` drives the mixing-chamber (sample) heater open loop at a power (0:
    off); ``heater_power`` reads back what it dissipates; ``heater_resistance_ohm`` is the
    resistance the drive assumes (corrected from the readback where the two disagree).
    """

    mxc_temperature: Parameter
    heater_power: Parameter
    heater_resistance_ohm: float | None

    def set_heater_power(self, watts: float) -> None: ...

    def heater_off(self) -> None: ...

    def safe_state(self) -> None: ...


@runtime_checkable
class NetworkAnalyzer(Protocol):
    """A VNA measuring one S-parameter as a complex trace over a linear frequency sweep.

    ``data_format`` (``ascii``, ``real32``, ``real64``) is how traces cross the wire;
    ``averaging`` switches sweep-to-sweep averaging of ``averages`` sweeps on.
    """

    RANGES: ClassVar[dict[str, tuple[float, float]]]
    start: Parameter
    stop: Parameter
    points: Parameter
    if_bandwidth: Parameter
    power: Parameter
    s_parameter: Parameter
    averages: Parameter
    frequency_axis: Parameter
    trace: Parameter
    data_format: Parameter
    averaging: Parameter

    def set_window(self, start_hz: float, stop_hz: float) -> None: ...

    def run_sweep(self, timeout: float | None = None) -> None: ...

    def enable_output(self) -> None: ...

    def safe_state(self) -> None: ...


@runtime_checkable
class SpectrumAnalyzer(Protocol):
    """A swept spectrum analyzer with a noise marker in dBm/Hz."""

    RANGES: ClassVar[dict[str, tuple[float, float]]]
    start: Parameter
    stop: Parameter
    points: Parameter
    rbw: Parameter
    averages: Parameter
    frequency_axis: Parameter
    trace: Parameter

    def set_window(self, start_hz: float, stop_hz: float) -> None: ...

    def use_noise_averaging(self) -> None: ...

    def run_sweep(self, timeout: float | None = None) -> None: ...

    def measure_noise_density(self, frequency: float) -> float: ...

    def safe_state(self) -> None: ...


@runtime_checkable
class BiasSource(Protocol):
    """A DC voltage source across the electro-optic crystal (tunes the triple resonance)."""

    voltage: Parameter
    current_limit: Parameter
    output: Parameter
    current: Parameter

    def enable_output(self) -> None: ...

    def safe_state(self) -> None:
        """Output off, 0 V."""
        ...


#: Role names a station may declare, and what each must provide.
ROLE_KINDS: dict[str, type] = {
    "pump": Laser,
    "meter": PowerMeter,      # the pump's through port, after the chip
    "monitor": PowerMeter,    # the pump's monitor tap, before the fridge
    "mw_source": MicrowaveSource,
    "cryostat": Cryostat,
    "vna": NetworkAnalyzer,
    "esa": SpectrumAnalyzer,
    "bias": BiasSource,       # DC bias across the EO crystal
}

"""What an experiment may call on each role, whatever model fills it.

Experiments address instruments by role (``lab.pump``, ``lab.meter``), never by model, so a
station can swap a Santec for a Keysight laser without touching an experiment.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from qcodes.parameters import Parameter


@runtime_checkable
class Laser(Protocol):
    """A tunable laser: SI wavelength (m) and power (W)."""

    wavelength: Parameter
    power: Parameter
    output: Parameter

    def enable_output(self) -> None:
        """Start emitting, undoing whatever the safe state closed (shutter, diode)."""
        ...

    def safe_state(self) -> None: ...


@runtime_checkable
class PowerMeter(Protocol):
    """An optical power meter reading watts at a set correction wavelength."""

    wavelength: Parameter
    power: Parameter
    averages: Parameter

    def safe_state(self) -> None: ...


@runtime_checkable
class MicrowaveSource(Protocol):
    """A CW microwave source: frequency in Hz, power in dBm (as the instruments' own unit)."""

    frequency: Parameter
    power: Parameter
    rf_output: Parameter

    def safe_state(self) -> None: ...


@runtime_checkable
class Cryostat(Protocol):
    """The fridge's thermometry and heaters: the mixing chamber in K, heater power in W."""

    mxc_temperature: Parameter
    heater_power: Parameter

    def safe_state(self) -> None: ...


@runtime_checkable
class NetworkAnalyzer(Protocol):
    """A VNA measuring one S-parameter as a complex trace over a linear frequency sweep."""

    start: Parameter
    stop: Parameter
    points: Parameter
    if_bandwidth: Parameter
    power: Parameter
    s_parameter: Parameter
    averages: Parameter
    frequency_axis: Parameter
    trace: Parameter

    def run_sweep(self, timeout: float | None = None) -> None: ...

    def enable_output(self) -> None: ...

    def safe_state(self) -> None: ...


@runtime_checkable
class SpectrumAnalyzer(Protocol):
    """A swept spectrum analyzer with a noise marker in dBm/Hz."""

    start: Parameter
    stop: Parameter
    points: Parameter
    rbw: Parameter
    averages: Parameter
    frequency_axis: Parameter
    trace: Parameter

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

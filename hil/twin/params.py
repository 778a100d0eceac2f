"""Twin parameters: Profile A of physics.md §4 by default, overridable from a station's ``twin:``.

Keys carry their SI unit in the name; every kappa is a full width in Hz (kappa/2pi).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from hil.twin.optical import SPEED_OF_LIGHT


class TwinParamError(ValueError):
    """A twin parameter is unknown or unphysical; the message names where it came from."""


@dataclass(frozen=True)
class TransducerParams:
    """The optical (pump) mode the laser addresses. Profile A: bulk LN WGM, kappa_o/2pi 25 MHz."""

    pump_wavelength_m: float = SPEED_OF_LIGHT / 193.4052e12
    kappa_o_hz: float = 25e6
    kappa_o_ex_hz: float = 7.5e6

    def check(self, where: str) -> None:
        if not 1.0e-6 < self.pump_wavelength_m < 2.0e-6:
            raise TwinParamError(
                f"{where}.pump_wavelength_m: {self.pump_wavelength_m} is outside 1e-6..2e-6 m"
            )
        if not self.kappa_o_hz > 0:
            raise TwinParamError(f"{where}.kappa_o_hz: must be > 0 Hz, got {self.kappa_o_hz}")
        if not 0 < self.kappa_o_ex_hz <= self.kappa_o_hz:
            raise TwinParamError(
                f"{where}.kappa_o_ex_hz: must be in (0, kappa_o_hz = {self.kappa_o_hz}] Hz, "
                f"got {self.kappa_o_ex_hz}"
            )


@dataclass(frozen=True)
class NoiseParams:
    """Instrument noise: relative power-meter noise per single reading (averaging divides it)."""

    power_meter_rel: float = 2e-3

    def check(self, where: str) -> None:
        if not 0 <= self.power_meter_rel < 1:
            raise TwinParamError(
                f"{where}.power_meter_rel: must be in [0, 1), got {self.power_meter_rel}"
            )


@dataclass(frozen=True)
class TwinParams:
    """Everything that makes one simulated lab differ from another."""

    seed: int | None = 1
    transducer: TransducerParams = field(default_factory=TransducerParams)
    noise: NoiseParams = field(default_factory=NoiseParams)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, where: str = "twin") -> TwinParams:
        """Build from a station's ``twin:`` mapping; unknown keys and bad values are refused."""
        data = dict(data or {})
        _refuse_unknown(data, {f.name for f in fields(cls)}, where)
        params = cls()
        if "seed" in data:
            seed = data["seed"]
            if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
                raise TwinParamError(f"{where}.seed: must be an integer or null, got {seed!r}")
            params = replace(params, seed=seed)
        for section in ("transducer", "noise"):
            if section in data:
                current = getattr(params, section)
                updated = _section_from_mapping(current, data[section], f"{where}.{section}")
                params = replace(params, **{section: updated})
        params.transducer.check(f"{where}.transducer")
        params.noise.check(f"{where}.noise")
        return params


def _refuse_unknown(data: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise TwinParamError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}"
        )


def _section_from_mapping(current: Any, data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise TwinParamError(f"{where}: must be a mapping of key: value, got {data!r}")
    _refuse_unknown(data, {f.name for f in fields(current)}, where)
    values = {}
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TwinParamError(f"{where}.{key}: must be a number, got {value!r}")
        values[key] = float(value)
    return replace(current, **values)

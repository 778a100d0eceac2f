"""Station YAML -> instruments on the twin or on real hardware, addressed by role.

The file is QCoDeS' station format (``instruments:`` with ``type``, ``address``, ``init`` and
``parameters``) plus ``roles:`` (role -> instrument), ``sim:`` (run every instrument on the
twin-coupled simulation of ``sim.lab``), ``twin:`` (twin parameters, see hil.sim.world) and
``interlocks:`` (watched by the runner while a run goes, see hil.safety).

A station whose instruments are reached through a VISA library instead (a twin served over TCP
by ``hil twin serve``, or a real rack) names it once, ``visalib: "@py"`` (pyvisa-py), for every
instrument; ``twin_server: {control: HOST:PORT}`` then makes ``lab.world`` the served twin's
clock and fault injection (hil.sim.remote), so waits move the served fridge's time.

Unlike QCoDeS, a parameter's ``limits`` narrow the driver's validator and may never widen it.
"""

from __future__ import annotations

import importlib
import importlib.resources
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyvisa
import qcodes
import yaml
from qcodes.instrument import Instrument
from qcodes.validators import Ints, Numbers

from hil.roles import ROLE_KINDS
from hil.safety import InterlockConfigError, InterlockSpec, parse_interlocks, resolve_parameter
from hil.sim.backend import ProfileError, open_lab
from hil.sim.world import TwinLab, TwinParamError, twin_world

if TYPE_CHECKING:
    from hil.sim.backend import SimVisaLibrary
    from hil.sim.remote import RemoteTwin

TOP_KEYS = {"instruments", "roles", "sim", "twin", "interlocks", "constants", "steps",
            "interlock_safe_state", "name", "metadata"}
INSTRUMENT_KEYS = {"type", "address", "init", "parameters"}
PARAMETER_KEYS = {"limits", "initial_value"}
#: What a run records about the sample (``metadata:`` in the station, ``hil run --meta``).
METADATA_KEYS = {"device", "sample", "cooldown", "operator", "notes"}
#: A station reached through a VISA library (see the module docs and :func:`_visalib`).
REMOTE_KEYS = {"visalib", "twin_server"}
TOP_KEYS |= REMOTE_KEYS


class StationError(ValueError):
    """A mistake in a station file; the message names the file and the key."""


@dataclass
class Lab:
    """The instruments of one station, reachable by role (``lab.pump``)."""

    path: Path
    yaml_text: str
    station: qcodes.Station
    roles: dict[str, Instrument]
    #: The twin: in-process, or served over TCP (clock and faults only); None on hardware.
    world: TwinLab | RemoteTwin | None = None
    interlocks: list[InterlockSpec] = field(default_factory=list)  # see hil.safety
    #: What the lab knows without measuring it here (pulse duty cycle, tap ratio at room
    #: temperature, amplifier noise temperature from a Y-factor): ``constants:`` in the file.
    constants: dict[str, float] = field(default_factory=dict)
    #: Step parameters this lab's device needs by default (``steps:``), e.g. its design
    #: frequencies; ``--set`` still wins.
    step_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The station's name (``name:``, default the file's stem): calibrations are kept under it.
    name: str = ""
    #: ``metadata:`` of the station: device, sample, cooldown, operator, notes.
    metadata: dict[str, str] = field(default_factory=dict)
    _closed: bool = field(default=False, repr=False)

    def __getattr__(self, name: str) -> Instrument:
        roles = self.__dict__.get("roles", {})
        if name in roles:
            return roles[name]
        raise AttributeError(
            f"station {self.__dict__.get('path')} has no role {name!r}; "
            f"it has: {', '.join(roles) or 'none'}"
        )

    def safe_state(self) -> list[str]:
        """Put every instrument in its safe state; returns what failed (never raises)."""
        failures = []
        for name, instrument in self.station.components.items():
            safe = getattr(instrument, "safe_state", None)
            if safe is None:
                continue
            try:
                safe()
            except Exception as exc:  # keep going: one stuck instrument must not leave others live
                failures.append(f"{name}: {exc}")
        return failures

    def snapshot(self) -> dict[str, Any]:
        return self.station.snapshot(update=False)

    def close(self) -> None:
        if not self._closed:
            for instrument in list(self.station.components.values()):
                if isinstance(instrument, Instrument):
                    instrument.close()
            close_world = getattr(self.world, "close", None)  # a served twin's control socket
            if callable(close_world):
                close_world()
            self._closed = True


def read_station_file(path: str | os.PathLike[str]) -> tuple[Path, str, dict[str, Any]]:
    """Read and check the structure of a station file without touching any instrument."""
    path = Path(path)
    if not path.is_file():
        raise StationError(f"{path}: station file not found")
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise StationError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise StationError(f"{path}: must be a mapping with an 'instruments:' section")
    _refuse_unknown(data, TOP_KEYS, f"{path}")
    instruments = data.get("instruments")
    if not isinstance(instruments, dict) or not instruments:
        raise StationError(f"{path}: 'instruments:' must map instrument names to their settings")
    for name, spec in instruments.items():
        where = f"{path}: instruments.{name}"
        if not isinstance(spec, dict):
            raise StationError(f"{where}: must be a mapping with 'type' and 'address'")
        _refuse_unknown(spec, INSTRUMENT_KEYS, where)
        for key in ("type", "address"):
            if not isinstance(spec.get(key), str):
                raise StationError(f"{where}.{key}: required, a string")
        for pname, pspec in (spec.get("parameters") or {}).items():
            if not isinstance(pspec, dict):
                raise StationError(f"{where}.parameters.{pname}: must be a mapping")
            _refuse_unknown(pspec, PARAMETER_KEYS, f"{where}.parameters.{pname}")
    roles = data.get("roles") or {}
    if not isinstance(roles, dict):
        raise StationError(f"{path}: 'roles:' must map role names to instrument names")
    for role, instrument in roles.items():
        if role not in ROLE_KINDS:
            raise StationError(f"{path}: roles.{role}: unknown role; known roles: "
                               f"{', '.join(ROLE_KINDS)}")
        if instrument not in instruments:
            raise StationError(f"{path}: roles.{role}: no instrument named {instrument!r}; "
                               f"instruments: {', '.join(instruments)}")
    _interlocks(path, data)
    station_identity(path, data)
    return path, text, data


def station_identity(path: str | Path, data: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """The station's name (``name:``, else the file's stem) and its ``metadata:``."""
    path = Path(path)
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        raise StationError(f"{path}: name: must be a non-empty string, got {name!r}")
    return name.strip(), check_metadata(data.get("metadata") or {}, f"{path}: metadata")


def check_metadata(values: Any, where: str) -> dict[str, str]:
    """Metadata as text; unknown keys and non-scalar values are refused naming ``where``."""
    if not isinstance(values, Mapping):
        raise StationError(f"{where}: must map keys ({', '.join(sorted(METADATA_KEYS))}) to text")
    _refuse_unknown(values, METADATA_KEYS, where)
    out = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise StationError(f"{where}.{key}: must be text or a number, got {value!r}")
        out[key] = str(value)
    return out


def step_defaults(path: Path, data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    steps = data.get("steps") or {}
    if not isinstance(steps, dict) or not all(isinstance(v, dict) for v in steps.values()):
        raise StationError(f"{path}: steps: must map step names to {{parameter: value}}")
    return {name: dict(values) for name, values in steps.items()}


def _constants(path: Path, data: Mapping[str, Any]) -> dict[str, float]:
    constants = data.get("constants") or {}
    if not isinstance(constants, dict):
        raise StationError(f"{path}: constants: must map names to numbers")
    for key, value in constants.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise StationError(f"{path}: constants.{key}: must be a number, got {value!r}")
    return {key: float(value) for key, value in constants.items()}


def _interlocks(path: Path, data: Mapping[str, Any]) -> list[InterlockSpec]:
    try:
        return parse_interlocks(data.get("interlocks"), where=str(path),
                                instruments=data["instruments"], roles=data.get("roles") or {},
                                always=data.get("interlock_safe_state"))
    except InterlockConfigError as exc:
        raise StationError(str(exc)) from None


def load_lab(path: str | Path, *, clock=None) -> Lab:
    """Open every instrument of a station; nothing is left open if any step fails.

    ``clock``: the twin's clock for a simulated station (virtual if None; a RealClock runs the
    fridge and sweeps in wall time, for demos).
    """
    path, text, data = read_station_file(path)
    world = None
    library = None
    visalib = _visalib(path, data)
    if "sim" in data:
        world, library = _open_sim(path, data, clock)
    elif "twin" in data:
        raise StationError(f"{path}: 'twin:' parameters need a 'sim:' section (the twin only "
                           "drives simulated instruments)")

    station = qcodes.Station()
    name, metadata = station_identity(path, data)
    lab = Lab(path=path, yaml_text=text, station=station, roles={}, world=world,
              interlocks=_interlocks(path, data), constants=_constants(path, data),
              step_defaults=step_defaults(path, data), name=name, metadata=metadata)
    try:
        manager = pyvisa.ResourceManager(library) if library is not None else None
        if visalib is not None:
            if "twin_server" in data:
                lab.world = _remote_twin(path, data["twin_server"])
            manager = _visa_manager(path, visalib)
        for name, spec in data["instruments"].items():
            instrument = _open_instrument(path, name, spec, manager, sim=library, world=lab.world)
            station.add_component(instrument)
            _apply_parameters(path, name, instrument, spec.get("parameters") or {})
        for role, name in (data.get("roles") or {}).items():
            component = station.components[name]
            kind = ROLE_KINDS[role]
            if not isinstance(component, Instrument) or not isinstance(component, kind):
                raise StationError(f"{path}: roles.{role}: {name} ({type(component).__name__}) "
                                   f"does not provide what a {kind.__name__} must")
            lab.roles[role] = component
        for spec in lab.interlocks:
            try:
                resolve_parameter(station.components, spec)
            except InterlockConfigError as exc:
                raise StationError(f"{path}: {exc}") from None
    except BaseException:
        lab.close()
        raise
    return lab


def _open_sim(path: Path, data: Mapping[str, Any], clock=None
              ) -> tuple[TwinLab, SimVisaLibrary]:
    """The twin of a station with ``sim:``, and the sim library of its lab file."""
    try:
        world = twin_world(data.get("twin"), where=f"{path}: twin", clock=clock)
    except TwinParamError as exc:
        raise StationError(str(exc)) from None
    return world, open_lab(_resolve_lab_file(path, data["sim"]), world)


@dataclass
class SimTwin:
    """A simulated station's twin and devices, without its instruments (what is served)."""

    path: Path
    yaml_text: str
    data: dict[str, Any]
    world: TwinLab
    library: SimVisaLibrary


def open_twin(path: str | Path, *, clock=None) -> SimTwin:
    """The twin and sim library of a station with ``sim:`` (``hil twin serve`` serves them).

    ``clock``: the twin's clock (virtual if None, as in :func:`load_lab`).
    """
    path, text, data = read_station_file(path)
    if "sim" not in data:
        raise StationError(f"{path}: has no 'sim:' section; only a simulated station (such as "
                           f"stations/twin.yaml) has a twin to serve")
    _visalib(path, data)
    world, library = _open_sim(path, data, clock)
    return SimTwin(path=path, yaml_text=text, data=data, world=world, library=library)


def _visalib(path: Path, data: Mapping[str, Any]) -> str | None:
    """Check ``visalib:`` and ``twin_server:``; the VISA library every instrument opens with."""
    visalib = data.get("visalib")
    if "sim" in data:
        clash = sorted(REMOTE_KEYS & set(data))
        if clash:
            raise StationError(f"{path}: {clash[0]}: cannot go with 'sim:' (which opens every "
                               f"instrument on the in-process twin); a station served by `hil "
                               f"twin serve` has visalib and twin_server, and no sim")
        return None
    if "visalib" in data and (not isinstance(visalib, str) or not visalib.strip()):
        raise StationError(f"{path}: visalib: must be a VISA library spec such as '@py' "
                           f"(pyvisa-py) or '@ivi', got {visalib!r}")
    server = data.get("twin_server")
    if "twin_server" in data:
        if visalib is None:
            raise StationError(f"{path}: twin_server: needs visalib (e.g. visalib: '@py') to "
                               f"reach the served instruments")
        if not isinstance(server, dict) or set(server) != {"control"}:
            raise StationError(f"{path}: twin_server: must be {{control: HOST:PORT}}, the "
                               f"control port `hil twin serve` prints, got {server!r}")
        from hil.sim.remote import parse_host_port

        try:
            parse_host_port(server["control"], f"{path}: twin_server.control")
        except ValueError as exc:
            raise StationError(str(exc)) from None
    return visalib


def _remote_twin(path: Path, server: Mapping[str, Any]) -> RemoteTwin:
    from hil.sim.remote import RemoteTwin, TwinServerError, parse_host_port

    host, port = parse_host_port(server["control"], f"{path}: twin_server.control")
    try:
        return RemoteTwin(host, port)
    except TwinServerError as exc:
        raise StationError(f"{path}: twin_server.control: {exc}") from None


def _visa_manager(path: Path, visalib: str) -> pyvisa.ResourceManager:
    try:
        if visalib.strip() == "@py":
            # pyvisa-py, reporting a socket the instrument closed as a lost connection.
            from hil.sim.remote import pyvisa_py_library

            return pyvisa.ResourceManager(pyvisa_py_library())
        return pyvisa.ResourceManager(visalib)
    except (ImportError, OSError, ValueError) as exc:
        hint = " (pip install pyvisa-py)" if "py" in visalib else ""
        raise StationError(f"{path}: visalib: cannot open {visalib!r}{hint}: {exc}") from None


def _open_instrument(path: Path, name: str, spec: Mapping[str, Any],
                     manager: pyvisa.ResourceManager | None, *, sim: SimVisaLibrary | None,
                     world: Any) -> Instrument:
    """One instrument of the station: on the in-process simulation (``sim``, the library of
    ``manager``); through another VISA library (a served twin or a real rack: ``*IDN?`` is
    checked before the driver's first command); or, with no ``manager``, by its address."""
    where = f"{path}: instruments.{name}"
    module_name, _, class_name = spec["type"].rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError):
        raise StationError(f"{where}.type: cannot import {spec['type']!r}") from None
    init = dict(spec.get("init") or {})
    if manager is None:
        try:
            return cls(name, spec["address"], **init)
        except TypeError as exc:
            raise StationError(f"{where}.init: {exc}") from None
    resource = _open_resource(where, spec["address"], manager, sim, world)
    try:
        if sim is None:
            _check_model(where, spec, cls, resource)
        return cls(name, resource=resource, **init)
    except TypeError as exc:
        resource.close()
        raise StationError(f"{where}.init: {exc}") from None
    except (pyvisa.errors.VisaIOError, OSError) as exc:  # it answered the connection, not the driver
        resource.close()
        if sim is not None:
            raise  # a fault injected into the simulation: the test that injected it wants it
        raise StationError(f"{where}: {spec['address']} failed while {name} was set up: "
                           f"{exc.args[0] if exc.args else exc}") from None
    except BaseException:
        resource.close()
        raise


def _open_resource(where: str, address: str, manager: pyvisa.ResourceManager,
                   sim: SimVisaLibrary | None, world: Any) -> Any:
    """The VISA resource at ``address``; an address nobody answers is refused naming it."""
    try:
        return manager.open_resource(address)
    except Exception as exc:  # pyvisa-py raises a bare Exception when a socket cannot connect
        if sim is not None:
            if not isinstance(exc, pyvisa.errors.VisaIOError):
                raise
            raise StationError(f"{where}.address: {address} is not in the simulated lab; it "
                               f"has: {', '.join(sim.devices.list_resources())}") from None
        served = getattr(world, "address", None)
        hint = (f"; is `hil twin serve` running (control {served})?" if served else "")
        raise StationError(f"{where}.address: cannot open {address}: {exc}{hint}") from None


def _check_model(where: str, spec: Mapping[str, Any], cls: type, resource: Any) -> None:
    """Ask ``*IDN?`` (and nothing else) before the driver sends its init commands: an address
    that reaches another model is refused naming both, not with a timeout after init bytes."""
    init = dict(spec.get("init") or {})
    term = init.get("terminator", getattr(cls, "default_terminator", "\n")) or "\n"
    resource.write_termination = resource.read_termination = term
    try:
        idn = str(resource.query("*IDN?")).strip()
    except Exception as exc:
        raise StationError(f"{where}: {spec['address']} did not answer *IDN? ({exc}); is it "
                           f"a {cls.__name__}?") from None
    fields = [f.strip() for f in idn.split(",")]
    found = fields[1] if len(fields) >= 2 else idn
    key = _model_key(found).removeprefix("MODEL")
    expected = getattr(cls, "idn_model", None)
    if expected is not None:
        ok = _model_key(expected) == _model_key(found)
    else:  # the driver's class name (or a base's) carries the model: SantecTSL570 ~ TSL-570
        ok = bool(key) and any(key in _model_key(c.__name__) for c in cls.__mro__)
    if not ok:
        raise StationError(f"{where}.address: {spec['address']} answers *IDN? with {idn!r}: "
                           f"expected model {expected or cls.__name__}, found {found}")


def _model_key(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


def _resolve_lab_file(station_path: Path, sim: Any) -> Path:
    where = f"{station_path}: sim.lab"
    if not isinstance(sim, dict) or not isinstance(sim.get("lab"), str):
        raise StationError(f"{where}: required, e.g. 'sim_profiles:lab.yaml' or a path")
    _refuse_unknown(sim, {"lab"}, f"{station_path}: sim")
    ref = sim["lab"]
    if ":" in ref and not Path(ref).exists():
        package, filename = ref.split(":", 1)
        try:
            resource = importlib.resources.files(package) / filename
        except ModuleNotFoundError:
            raise StationError(f"{where}: no package {package!r}") from None
        lab_file = Path(str(resource))
    else:
        lab_file = (station_path.parent / ref).resolve()
    if not lab_file.is_file():
        raise StationError(f"{where}: {lab_file} not found")
    return lab_file


def _apply_parameters(path: Path, name: str, instrument: Instrument,
                      settings: Mapping[str, Mapping[str, Any]]) -> None:
    for pname, pspec in settings.items():
        where = f"{path}: instruments.{name}.parameters.{pname}"
        try:
            parameter = instrument.parameters[pname]
        except KeyError:
            raise StationError(f"{where}: {name} has no parameter {pname!r}") from None
        if "limits" in pspec:
            parameter.add_validator(_narrowing_validator(where, parameter, pspec["limits"]))
        if "initial_value" in pspec:
            try:
                parameter.set(pspec["initial_value"])
            except ValueError as exc:
                raise StationError(f"{where}.initial_value: {exc}") from None


def _narrowing_validator(where: str, parameter, limits: Any) -> Numbers | Ints:
    if (not isinstance(limits, list | tuple) or len(limits) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in limits)
            or limits[0] > limits[1]):
        raise StationError(f"{where}.limits: must be [low, high] numbers with low <= high, "
                           f"got {limits!r}")
    low, high = limits
    current = parameter.vals
    lo_now = getattr(current, "min_value", None)
    hi_now = getattr(current, "max_value", None)
    if lo_now is None or hi_now is None:
        raise StationError(f"{where}.limits: {parameter.full_name} has no numeric range to narrow")
    if low < lo_now or high > hi_now:
        raise StationError(
            f"{where}.limits: [{low}, {high}] {parameter.unit} widens the driver's range "
            f"[{lo_now}, {hi_now}] {parameter.unit}; limits may only narrow it"
        )
    return Ints(int(low), int(high)) if isinstance(current, Ints) else Numbers(low, high)


def _refuse_unknown(data: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise StationError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; "
                           f"allowed: {', '.join(sorted(known))}")


__all__ = ["METADATA_KEYS", "Lab", "ProfileError", "SimTwin", "StationError", "check_metadata",
           "load_lab", "open_twin", "read_station_file", "station_identity"]

"""``hil profiles check``: prove a sim profile answers every command its driver sends.

For each model (``sim_profiles/<model>.yaml`` beside ``instruments/<model>.py``) the driver is
opened on a private copy of its profile with plain pyvisa-sim (``@sim``), so the profile must
stand on its own. Every gettable parameter is read; every settable one is set to a valid value
different from its current one and read back. Whatever times out, fails to parse, is refused or
does not read back is a gap.

:func:`check_driver` (``hil profiles check --driver package.module:Class``) does the same for a
lab's own driver of one of these models, on the twin-coupled simulation (``hil.sim``) with its
SCPI grammar, and also lists every command the simulation did not understand with its error
code: what the lab checks before the cooldown.
"""

from __future__ import annotations

import importlib
import importlib.resources
import importlib.util
import inspect
import logging
import math
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyvisa
import yaml
from pyvisa.resources import MessageBasedResource
from qcodes.instrument import InstrumentBase, VisaInstrument
from qcodes.parameters import Parameter, ParameterBase
from qcodes.validators import Bool, Enum, Ints, Numbers

QUERY_TIMEOUT_S = 0.3  # a profile that does not answer shows up as a timeout: keep it short


@dataclass
class ModelReport:
    model: str
    driver: str
    checked: int = 0
    gaps: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.gaps


def profile_dir() -> Path:
    return Path(str(importlib.resources.files("sim_profiles")))


def models() -> list[str]:
    """Every model with both a profile and a driver module."""
    found = []
    for path in sorted(profile_dir().glob("*.yaml")):
        if importlib.util.find_spec(f"instruments.{path.stem}") is not None:
            found.append(path.stem)
    return found


def driver_classes(model: str) -> list[type[VisaInstrument]]:
    """The public VisaInstrument classes defined in ``instruments.<model>``."""
    module = importlib.import_module(f"instruments.{model}")
    return [cls for name, cls in inspect.getmembers(module, inspect.isclass)
            if cls.__module__ == module.__name__ and not name.startswith("_")
            and issubclass(cls, VisaInstrument)]


def check(model: str, folder: Path | None = None) -> list[ModelReport]:
    """Check every driver class of ``model`` against its profile (in ``folder`` if given)."""
    profile = (folder or profile_dir()) / f"{model}.yaml"
    if not profile.is_file():
        raise FileNotFoundError(f"{profile}: no profile for model {model!r}; "
                                f"models: {', '.join(models())}")
    address = next(iter(yaml.safe_load(profile.read_text())["resources"]))
    reports = []
    for cls in driver_classes(model):
        with tempfile.TemporaryDirectory() as scratch:
            copy = Path(scratch) / profile.name
            shutil.copyfile(profile, copy)
            reports.append(_check_driver(model, cls, lambda name, cls=cls, copy=copy: cls(
                name, address, visalib=f"{copy}@sim", timeout=QUERY_TIMEOUT_S)))
    return reports


def load_driver(spec: str) -> type[VisaInstrument]:
    """``package.module:Class`` -> the class; ValueError naming what is wrong."""
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"--driver {spec!r}: must be package.module:Class, e.g. "
                         f"qcodes.instrument_drivers.Keysight:KeysightN5183B")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"--driver {spec!r}: cannot import {module_name}: {exc}") from None
    cls = getattr(module, class_name, None)
    if not (inspect.isclass(cls) and issubclass(cls, VisaInstrument)):
        raise ValueError(f"--driver {spec!r}: {module_name} has no VisaInstrument class "
                         f"{class_name}")
    return cls


def guess_model(cls: type) -> str:
    """The profile whose model number the driver's name carries (``KeysightN5183B`` ->
    ``keysight_n5183b``); ValueError if none or several do."""
    text = f"{cls.__module__}.{cls.__name__}".lower().replace("_", "")
    found = [m for m in models() if m.rsplit("_", 1)[-1] in text]
    if len(found) != 1:
        raise ValueError(f"cannot tell which model {cls.__name__} drives "
                         f"({', '.join(found) or 'no profile matches'}); give --model, one of: "
                         f"{', '.join(models())}")
    return found[0]


def check_driver(spec: str, model: str | None = None, folder: Path | None = None) -> ModelReport:
    """Run a lab's own driver ``spec`` on our simulation of ``model`` (the twin-coupled lab,
    with the profiles of ``folder`` where it has them): every get, every set read back, and
    every command the simulation did not understand (its bytes and error code)."""
    cls = load_driver(spec)
    model = model or guess_model(cls)
    if model not in models():
        raise ValueError(f"--model {model!r}: no such profile; models: {', '.join(models())}")
    from hil.sim.backend import open_lab  # the simulation, only for this check

    with tempfile.TemporaryDirectory() as tmp:
        for path in profile_dir().glob("*.yaml"):
            shutil.copyfile(path, Path(tmp) / path.name)
        if folder is not None and (folder / f"{model}.yaml").is_file():
            shutil.copyfile(folder / f"{model}.yaml", Path(tmp) / f"{model}.yaml")
        library = open_lab(Path(tmp) / "lab.yaml")
        quiet = logging.getLogger("hil.sim")  # the report lists what it would log
        level, quiet.level = quiet.level, logging.ERROR
        lab = yaml.safe_load((Path(tmp) / "lab.yaml").read_text())
        address = next(a for a, r in lab["resources"].items() if r.get("filename") == f"{model}.yaml")
        device = library.device(address)
        manager = pyvisa.ResourceManager(library)

        def connect(name: str) -> VisaInstrument:
            resource = manager.open_resource(address)
            if not isinstance(resource, MessageBasedResource):
                raise TypeError(f"{address}: not a message-based resource; drivers speak SCPI text")
            try:
                return cls(name, resource=resource, timeout=QUERY_TIMEOUT_S)
            except TypeError as exc:
                if "address" not in str(exc):
                    raise
                return cls(name, None, resource=resource, timeout=QUERY_TIMEOUT_S)

        try:
            report = _check_driver(model, cls, connect)
        finally:
            quiet.setLevel(level)
    seen = set()
    for message, code, text in device.refused:
        if message not in seen:
            seen.add(message)
            report.gaps.append(f"not understood: {message.decode('ascii', 'replace')!r} -> "
                               f"{code},\"{text}\"")
    report.driver = spec
    return report


def _check_driver(model: str, cls: type[VisaInstrument], connect) -> ModelReport:
    report = ModelReport(model=model, driver=f"{cls.__module__}.{cls.__name__}")
    name = f"profile_check_{model}"
    try:
        instrument = connect(name)
    except Exception as exc:
        report.gaps.append(f"driver could not start on the profile: {_one_line(exc)}")
        return report
    try:
        # Read everything before changing anything: a set (points, data format) may change
        # what a later get parses, and the profile's static replies do not follow.
        parameters = list(_parameters(instrument))
        current: dict[str, Any] = {}
        for parameter in parameters:
            report.checked += 1
            gap = _check_get(parameter, current)
            if gap:
                report.gaps.append(f"{_short(parameter, name)}: {gap}")
        for parameter in parameters:
            if parameter.full_name in current or not parameter.gettable:
                gap = _check_set(parameter, current.get(parameter.full_name))
                if gap:
                    report.gaps.append(f"{_short(parameter, name)}: {gap}")
    finally:
        instrument.close()
    return report


def _short(parameter: ParameterBase, instrument_name: str) -> str:
    return parameter.full_name.removeprefix(instrument_name + "_")


def _parameters(node: InstrumentBase) -> Iterator[ParameterBase]:
    for parameter in node.parameters.values():
        if parameter.name not in ("IDN", "timeout"):
            yield parameter
    for sub in node.submodules.values():
        if isinstance(sub, InstrumentBase):
            yield from _parameters(sub)
        else:  # a ChannelTuple
            for channel in sub:
                yield from _parameters(channel)


def _check_get(parameter: ParameterBase, current: dict[str, Any]) -> str | None:
    if not parameter.gettable:
        return None
    try:
        current[parameter.full_name] = parameter.get()
    except Exception as exc:
        return f"get ({_command(parameter, 'get')}) failed: {_one_line(exc)}"
    return None


def _check_set(parameter: ParameterBase, before: Any) -> str | None:
    if not parameter.settable or not isinstance(parameter, Parameter):
        return None
    target = _other_valid_value(parameter, before)
    if target is None:
        return None
    try:
        parameter.set(target)
    except Exception as exc:
        return f"set to {target!r} ({_command(parameter, 'set')}) failed: {_one_line(exc)}"
    if parameter.gettable:
        parameter.cache.invalidate()
        try:
            after = parameter.get()
        except Exception as exc:
            return f"read back after set failed: {_one_line(exc)}"
        if not _same(after, target, parameter):
            return f"set {target!r} but read back {after!r}"
    return None


def _other_valid_value(parameter: Parameter, current: Any) -> Any:
    vals = parameter.vals
    options: list[Any]
    if parameter.val_mapping is not None:
        options = list(parameter.val_mapping)
    elif isinstance(vals, Bool):
        options = [True, False]
    elif isinstance(vals, Enum):
        options = list(vals._values)
    elif isinstance(vals, Ints):
        low, high = vals._min_value, vals._max_value
        options = [int(low + (high - low) * f) for f in (0.37, 0.61)]
    elif isinstance(vals, Numbers):
        bottom, top = float(vals._min_value), float(vals._max_value)
        if not (math.isfinite(bottom) and math.isfinite(top)):
            return None
        options = [_round_sig(bottom + (top - bottom) * f) for f in (0.37, 0.61)]
    else:
        return None
    for option in options:
        if not _same(current, option, parameter):
            try:
                parameter.validate(option)
            except (TypeError, ValueError):
                continue
            return option
    return None


def _round_sig(value: float) -> float:
    """A round number, so the instrument's resolution does not change it."""
    if value == 0:
        return 0.0
    return float(f"{value:.3g}")


def _same(a: Any, b: Any, parameter: Parameter) -> bool:
    """Equal as the instrument sees it: same raw value, or within its resolution."""
    mapping = parameter.val_mapping
    if mapping is not None:
        return mapping.get(a, a) == mapping.get(b, b)
    if isinstance(a, int | float) and isinstance(b, int | float):
        vals = parameter.vals
        span = getattr(vals, "_max_value", 0) - getattr(vals, "_min_value", 0)
        # Instruments round to their own resolution (0.01 dB, 0.01 rad, ...): allow 0.1 % of range.
        tolerance = 1e-3 * abs(span) if math.isfinite(span) else 0.0
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=tolerance)
    return a == b


def _command(parameter: ParameterBase, kind: str) -> str:
    """The SCPI command behind a parameter (QCoDeS keeps it on its get_raw/set_raw Command)."""
    text = getattr(getattr(parameter, f"{kind}_raw", None), "cmd_str", None)
    return text if isinstance(text, str) else "driver code"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


__all__ = ["ModelReport", "check", "check_driver", "driver_classes", "models"]

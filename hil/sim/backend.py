"""A pyvisa-sim library whose devices are coupled through one :class:`~hil.twin.TwinLab`.

Built on pyvisa-sim 0.7 internals (pinned in pyproject): its ``parser`` builds the devices
exactly as plain ``@sim`` would, then every property carrying a ``twin:`` key is swapped for a
:class:`TwinProperty` bound to the twin (see ``hil.sim`` for the profile keys).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyvisa
from pyvisa.constants import InterfaceType, ResourceAttribute, StatusCode
from pyvisa.errors import VisaIOError
from pyvisa.rname import to_canonical_name
from pyvisa_sim import highlevel, parser
from pyvisa_sim.component import Property
from pyvisa_sim.devices import Device, Devices

from hil.sim.device import Fault, SimDevice
from hil.sim.units import check_unit, from_si, to_si
from hil.twin import TwinLab


class ProfileError(ValueError):
    """A profile or lab file uses the twin keys wrongly; the message names file and key."""


@dataclass(frozen=True)
class TwinBinding:
    """Where one device property lives in the twin."""

    slot: str
    key: str
    kind: str  # "state", "reading" or "trace"
    unit: str = "1"
    format_property: str | None = None  # trace: the device property naming ASCII or REAL,32/64
    byte_order_property: str | None = None  # trace: NORM (big-endian) or SWAP; default SWAP


class TwinProperty(Property):
    """A pyvisa-sim property backed by the twin: a setting it shares, or a reading it computes.

    A setting's value lives in the twin, not here, so settings the twin couples (a VNA's centre
    and span move its start and stop) read back as the instrument would report them.
    """

    def __init__(self, original: Property, binding: TwinBinding, world: TwinLab) -> None:
        # Take over the original's validated value and specs without re-parsing the default.
        self.name = original.name
        self.specs = original.specs
        self._value = original._value
        self.binding = binding
        self.world = world
        if binding.kind == "state":
            world.set_state(binding.slot, binding.key, to_si(binding.unit, self._value))

    def get_value(self):
        b = self.binding
        if b.kind == "trace":
            return self.world.trace(b.slot, b.key)
        si = self.world.read(b.slot, b.key) if b.kind == "reading" else self.world.state(b.slot, b.key)
        value = from_si(b.unit, si)
        return self.specs.type(value) if self.specs is not None else value

    def set_value(self, string_value: str) -> None:
        if self.binding.kind != "state":
            raise ValueError(f"{self.name} is a {self.binding.kind} of the twin and cannot be set")
        value = self.validate_value(string_value)
        self.world.set_state(self.binding.slot, self.binding.key, to_si(self.binding.unit, value))

    def reply(self, device: Device) -> bytes:
        """A trace as the instrument transfers it: ASCII, or a REAL,32/64 binary block."""
        values = np.asarray(self.get_value(), dtype=float)
        fmt = _property_text(device, self.binding.format_property, "ASC").upper()
        if fmt.startswith("REAL"):
            order = _property_text(device, self.binding.byte_order_property, "SWAP").upper()
            dtype = (">" if order.startswith("NORM") else "<") + ("f4" if fmt.endswith("32") else "f8")
            payload = values.astype(dtype).tobytes()
            length = str(len(payload)).encode()
            return b"#" + str(len(length)).encode() + length + payload
        return ",".join(f"{v:.10E}" for v in values).encode()


def _property_text(device: Device, name: str | None, default: str) -> str:
    if name is None:
        return default
    return str(device._properties[name].get_value())


class SimVisaLibrary(highlevel.SimVisaLibrary):
    """The twin-coupled sim library.

    Keeps pyvisa-sim's class name on purpose: QCoDeS recognises simulated instruments by it.
    Create it with :func:`open_lab`, never through pyvisa's library cache (each lab owns its world).
    """

    world: TwinLab

    def _init(self) -> None:
        # Devices are built once a world is attached (see open_lab); pyvisa calls _init first.
        # QCoDeS calls it again when the last instrument on the library closes, to reset plain
        # pyvisa-sim's state: here the lab (devices and twin) outlives its clients, as a rack
        # does; reset() is the explicit power-on.
        if getattr(self, "world", None) is not None:
            return
        self.sessions: dict[int, Any] = {}
        self.devices = Devices()

    def open(self, session, resource_name, *args, **kwargs):
        """As pyvisa-sim's, but an address the lab does not have raises instead of half-opening."""
        handle, status = super().open(session, resource_name, *args, **kwargs)
        if status != StatusCode.success:
            raise VisaIOError(status)
        return handle, status

    def _build(self, world: TwinLab) -> None:
        self.world = world
        path = str(self.library_path)
        try:
            loader = parser.Loader(path, False)
        except Exception as exc:  # pyvisa-sim reports YAML errors with its own traceback text
            raise ProfileError(f"{path}: cannot be read as a pyvisa-sim file: {exc}") from exc
        for resource_name, resource in loader.data.get("resources", {}).items():
            device_name = resource["device"]
            device_dict = loader.get_device_dict(
                device_name, resource.get("filename"), resource.get("bundled", False),
                parser.SPEC_VERSION_TUPLE[0],
            )
            device = _build_device(device_name, device_dict, loader, resource)
            slot = resource.get("twin")
            if slot is not None:
                profile = resource.get("filename") or path
                _bind_properties(device, device_dict, slot, world, f"{profile}: devices.{device_name}")
            device.index_profile(device_dict)
            device.remember_defaults()
            self.devices.add_device(to_canonical_name(resource_name), device)

    # --- faults and reset, for tests and the reliability suite ----------------------------------
    def device(self, resource_name: str) -> SimDevice:
        try:
            return self.devices[to_canonical_name(resource_name)]
        except KeyError:
            raise KeyError(f"the simulated lab has no {resource_name}; it has: "
                           f"{', '.join(self.devices.list_resources())}") from None

    def inject(self, resource_name: str, kind: str, *, count: int = 1,
               text: str = '-350,"Queue overflow"', seconds: float | None = None) -> None:
        """Make an instrument misbehave: ``timeout``, ``garbage``, ``error`` or ``disconnect``;
        or, served over TCP (hil.sim.server), its wire: ``delay`` or ``split`` (see Fault)."""
        self.device(resource_name).inject(Fault(kind, count=count, text=text, seconds=seconds))

    def reconnect(self, resource_name: str) -> None:
        self.device(resource_name).reconnect()

    def reset(self) -> None:
        """Every instrument back to its profile's defaults, as after power-up."""
        for name in self.devices.list_resources():
            self.devices[name].reset()

    def read(self, session, count):
        """As pyvisa-sim's read, with the same VISA end rules, but a whole reply at a time.

        pyvisa-sim moves a reply one byte per loop turn (with an attribute lookup and a
        Python-level check per byte): a 100k-point trace took seconds. Here the bytes that are
        already in the device's output buffer are taken at once, cut where pyvisa-sim would stop:
        the END of a reply (unless suppressed), the termination character if enabled, or
        ``count``. With nothing to read yet, pyvisa-sim's own loop waits for the timeout.
        """
        self._check_connected(session)
        sess = self.sessions.get(session)
        chunk = _take_ready(sess, count) if sess is not None else None
        if chunk is None:
            return super().read(session, count)
        return chunk

    def write(self, session, data):
        self._check_connected(session)
        return super().write(session, data)

    def _check_connected(self, session) -> None:
        device = getattr(self.sessions.get(session), "device", None)
        if device is not None and not getattr(device, "connected", True):
            raise VisaIOError(StatusCode.error_connection_lost)


def _take_ready(sess, count: int) -> tuple[bytes, StatusCode] | None:
    """The reply bytes a pyvisa-sim session's read would return, taken in slices; None where
    pyvisa-sim's byte loop must run (nothing buffered yet, serial end rules, a device of its own)."""
    device = getattr(sess, "device", None)
    buffers = getattr(device, "_output_buffers", None)
    if device is None or not buffers or count <= 0 or type(device).read is not Device.read:
        return None
    attribute = sess.get_attribute
    if attribute(ResourceAttribute.interface_type)[0] == InterfaceType.asrl:
        return None
    suppress_end = attribute(ResourceAttribute.suppress_end_enabled)[0]
    termchar = bytes([attribute(ResourceAttribute.termchar)[0]])
    termchar_enabled = attribute(ResourceAttribute.termchar_enabled)[0]
    out = bytearray()
    while buffers:
        buffer = buffers[0]
        n = min(len(buffer), count - len(out))
        stop = buffer.find(termchar, 0, n) if termchar_enabled else -1
        if stop >= 0:
            n = stop + 1
        out += buffer[:n]
        del buffer[:n]
        if not buffer:
            buffers.popleft()
            if not suppress_end:  # the END of a reply comes first, as in pyvisa-sim
                return bytes(out), StatusCode.success
        if stop >= 0:
            return bytes(out), StatusCode.success_termination_character_read
        if len(out) == count:
            return bytes(out), StatusCode.success_max_count_read
    # END suppressed and no termination character yet: wait for more as pyvisa-sim does
    rest, status = sess.read(count - len(out))
    if status == StatusCode.error_timeout:
        raise VisaIOError(StatusCode.error_timeout)
    return bytes(out) + bytes(rest), status


def _build_device(name: str, device_dict: Mapping[str, Any], loader: parser.Loader,
                  resource: Mapping[str, Any]) -> SimDevice:
    """As pyvisa_sim.parser.get_device, but building our SimDevice."""
    device = SimDevice(name, device_dict.get("delimiter", ";").encode("utf-8"))
    device.add_error_handler(device_dict.get("error", {}))
    for interface, eom in device_dict.get("eom", {}).items():
        device.add_eom(interface, *parser._get_pair(eom))
    parser.update_component(name, device, device_dict)
    for channel_name, channel in device_dict.get("channels", {}).items():
        device.add_channels(channel_name,
                            parser.get_channel(device, channel_name, channel, loader, resource))
    return device


def _bind_properties(device: SimDevice, device_dict: Mapping[str, Any], slot: str, world: TwinLab,
                     where: str) -> None:
    for name, prop in device_dict.get("properties", {}).items():
        spec = prop.get("twin")
        if spec is None:
            continue
        here = f"{where}.properties.{name}.twin"
        kinds = {"state", "reading", "trace"} & set(spec) if isinstance(spec, Mapping) else set()
        if len(kinds) != 1:
            raise ProfileError(f"{here}: must be {{state: KEY, unit: U}}, {{reading: KEY, unit: U}} "
                               "or {trace: KEY, format: PROPERTY}")
        kind = kinds.pop()
        binding = TwinBinding(slot=slot, key=spec[kind], kind=kind, unit=spec.get("unit", "1"),
                              format_property=spec.get("format"),
                              byte_order_property=spec.get("byte_order"))
        try:
            check_unit(binding.unit, here)
            world.check_binding(slot, binding.key, kind)
            for other in (binding.format_property, binding.byte_order_property):
                if other is not None and other not in device._properties:
                    raise KeyError(f"the device has no property {other!r} to read the format from")
        except (KeyError, ValueError) as exc:
            raise ProfileError(f"{here}: {exc.args[0]}") from None
        device._properties[name] = TwinProperty(device._properties[name], binding, world)
        if kind == "trace":
            getter = prop.get("getter", {}).get("q")
            device.trace_queries[getter.strip().encode()] = name
    for dialogue in device_dict.get("dialogues", ()):
        spec = dialogue.get("twin")
        if spec is None:
            continue
        here = f"{where}.dialogues[{dialogue.get('q')!r}].twin"
        if not isinstance(spec, Mapping) or set(spec) != {"action"}:
            raise ProfileError(f"{here}: must be {{action: NAME}}")
        try:
            world.check_binding(slot, spec["action"], "action")
        except KeyError as exc:
            raise ProfileError(f"{here}: {exc.args[0]}") from None
        device.actions[dialogue["q"].strip().encode()] = _action(world, slot, spec["action"])


def _action(world: TwinLab, slot: str, name: str):
    return lambda: world.act(slot, name)


def open_lab(lab_file: str | os.PathLike, world: TwinLab | None = None) -> SimVisaLibrary:
    """A fresh sim library for ``lab_file`` coupled to ``world`` (a default twin if None)."""
    path = os.fspath(lab_file)
    if not os.path.isfile(path):
        raise ProfileError(f"{path}: lab file not found")
    key = (SimVisaLibrary, pyvisa.util.LibraryPath(path, "user specified"))
    SimVisaLibrary._registry.pop(key, None)
    library = SimVisaLibrary(path)
    # Not cached: a second lab on the same file must get its own devices and world.
    SimVisaLibrary._registry.pop(key, None)
    library._build(world if world is not None else TwinLab())
    return library

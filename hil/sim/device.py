"""A pyvisa-sim device that behaves like the real box: one SCPI front end, a real error queue,
status registers, reset and faults.

Every message goes through the grammar of :mod:`hil.sim.scpi` (units, header path, short and
long forms, units and MIN/MAX in values); what it resolves is handed to pyvisa-sim's own
matching in the profile's canonical spelling, so the profile stays a plain pyvisa-sim file and
the twin bindings (hil.sim.backend) keep working. What it cannot resolve is logged (logger
``hil.sim``, instrument and bytes) and queued with its standard code; a query it cannot answer
gets no reply, as on a real instrument, and the client times out.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from pyvisa_sim.component import NoResponse, OptionalBytes
from pyvisa_sim.devices import Device

from hil.sim.entries import (
    Entry,
    flag,
    is_slot,
    is_stored,
    param_text,
    same_token,
    spell,
    wire_unit_of,
)
from hil.sim.errorqueue import (
    DEFAULT_QUEUE_DEPTH,
    ESR_CME,
    ESR_DDE,
    ESR_EXE,
    ESR_OPC,
    ESR_QYE,
    ErrorQueue,
)
from hil.sim.faults import FAULT_KINDS, GARBAGE, WIRE_FAULTS, Fault
from hil.sim.scpi import (
    BOOLEANS,
    DEFAULT_OPTIONAL,
    SPECIAL_CHOICES,
    HeaderIndex,
    Node,
    ScpiError,
    Unit,
    parse_numeric,
    parse_unit,
    split_units,
)
from hil.sim.units import from_si, to_si

__all__ = ["DEFAULT_QUEUE_DEPTH", "FAULT_KINDS", "GARBAGE", "WIRE_FAULTS", "Entry", "ErrorQueue",
           "Fault", "SimDevice"]

log = logging.getLogger("hil.sim")

_CODE = re.compile(r'^\s*([+-]?\d+)\s*,\s*"?(.*?)"?\s*$')


class SimDevice(Device):
    """pyvisa-sim's Device plus what instruments really do and tests need to provoke.

    * every message through one SCPI grammar (hil.sim.scpi) onto the profile's spellings;
    * a real error queue (standard codes, FIFO, overflow) and ``*ESR?``/``*STB?``/``*ESE``/``*SRE``;
    * ``*RST`` (or :meth:`reset`) returns every property to the profile's default;
    * :meth:`inject` queues faults: a dropped reply (the client times out), a garbage reply, an
      instrument error in the error queue, or a dropped connection until :meth:`reconnect`.
    """

    def __init__(self, name: str, delimiter: bytes) -> None:
        super().__init__(name, delimiter)
        self.faults: deque[Fault] = deque()
        self.connected = True
        self._defaults: dict[str, object] = {}
        self.index = HeaderIndex()
        self.scpi_matching = True  # a profile of a non-SCPI instrument turns it off
        self.trace_queries: dict[bytes, str] = {}  # query -> twin trace property (binary-capable)
        self.actions: dict[bytes, Callable[[], None]] = {}  # command -> what the twin does
        self.wire_faults: deque[Fault] = deque()  # replies the TCP server must send oddly
        self.errors: ErrorQueue | None = None  # None: the instrument has no error queue
        self.error_query: str | None = None
        self.esr = 0
        self.ese = 0
        self.sre = 0
        #: What this device refused, oldest first: (message, code, text); bounded.
        self.refused: deque[tuple[bytes, int, str]] = deque(maxlen=1000)
        self._plans: dict[bytes, bytes] = {}  # query message -> its canonical spelling
        self._plan: bytes | None = None

    # --- building (hil.sim.backend) -------------------------------------------------------------
    def index_profile(self, device_dict: Mapping[str, Any]) -> None:
        """Register every command the profile spells, and its error queue, in the grammar."""
        self.scpi_matching = str(device_dict.get("scpi_matching", "true")).lower() != "false"
        scpi = device_dict.get("scpi") or {}
        optional = scpi.get("optional", DEFAULT_OPTIONAL) if self.scpi_matching else ()
        self.index = HeaderIndex(optional, exact=not self.scpi_matching)
        error = device_dict.get("error") or {}
        queues = error.get("error_queue") or [] if isinstance(error, Mapping) else []
        if queues:
            self.error_query = queues[0]["q"].strip()
            self.errors = ErrorQueue(str(queues[0].get("default", '0,"No error"')),
                                     int(scpi.get("error_queue_depth", DEFAULT_QUEUE_DEPTH)))
        for dialogue in device_dict.get("dialogues", ()):
            self._add(Entry("dialogue", dialogue["q"].strip(), "", ()))
        self._add_properties(device_dict.get("properties", {}), self._properties)
        for name, channel in device_dict.get("channels", {}).items():
            self._add_properties(channel.get("properties", {}), self._channels[name]._properties)
        for alias, target in (device_dict.get("aliases") or {}).items():
            self._alias(str(alias), str(target))

    def _add_properties(self, definitions: Mapping[str, Any], properties: Mapping[str, Any]) -> None:
        for name, definition in definitions.items():
            prop = properties.get(name)
            twin = definition.get("twin") if isinstance(definition.get("twin"), Mapping) else {}
            unit = definition.get("unit", twin.get("unit"))
            extra = {"modes": definition.get("modes") or {},
                     "suffixes": flag(definition.get("suffixes", True))}
            if extra["modes"] and unit is None:
                raise ValueError(f"profile property {name!r}: 'modes' convert from its unit, "
                                 "so it needs a 'unit' (or twin: unit)")
            common = dict(prop=prop, wire_unit=unit, default=definition.get("default"), extra=extra)
            getter, setter = definition.get("getter"), definition.get("setter")
            if getter:
                self._add(Entry("get", getter["q"].strip(), "", (), reply_format=getter.get("r", "{}"),
                                **common))
            if setter:
                self._add(Entry("set", setter["q"].strip(), "", (), **common))

    def _add(self, entry: Entry) -> None:
        try:
            unit = parse_unit(entry.spelling)
        except ScpiError:
            return  # not SCPI text (pyvisa-sim still matches it exactly)
        entry.header = entry.spelling.split(None, 1)[0]
        entry.params = unit.params
        self.index.add(unit, entry)

    def _alias(self, alias: str, target: str) -> None:
        """``KRDG?`` answers as ``RDGK?`` does (a second spelling the firmware accepts)."""
        for entries in list(self.index.all_entries()):
            for entry in entries:
                if entry.header.upper() == target.upper():
                    clone = Entry(**{**entry.__dict__, "extra": {"alias": alias}})
                    self.index.add(parse_unit(alias + (" " + ",".join(entry.params)
                                                       if entry.params else "")), clone)

    def remember_defaults(self) -> None:
        """Record the profile's values as what ``*RST`` restores (call once, after building)."""
        self._defaults = {name: prop.get_value() for name, prop in self._properties.items()
                          if is_stored(prop)}

    # --- state ----------------------------------------------------------------------------------
    def reset(self, power_on: bool = True) -> None:
        """Settings back to the profile's defaults; ``power_on`` also clears queues and status
        (``*RST`` keeps the error queue and status enables, as the standard says)."""
        for name, value in self._defaults.items():
            self._properties[name].set_value(str(value))
        if power_on:
            if self.errors is not None:
                self.errors.clear()
            self.esr = self.ese = self.sre = 0
            self._output_buffers.clear()

    def push_error(self, code: int, text: str) -> None:
        """Queue an error as the instrument would, and set its event status bit."""
        if self.errors is not None:
            self.errors.push(code, text)
        if -199 <= code <= -100:
            self.esr |= ESR_CME
        elif -299 <= code <= -200:
            self.esr |= ESR_EXE
        elif -499 <= code <= -400:
            self.esr |= ESR_QYE
        elif code != 0:
            self.esr |= ESR_DDE

    def error_response(self, error_key: str) -> OptionalBytes | None:
        """pyvisa-sim's hook for a value its own matching refuses: an out-of-range value."""
        self.push_error(-222, "Data out of range")
        return NoResponse

    def inject(self, fault: Fault) -> None:
        if fault.kind == "disconnect":
            self.connected = False
        else:
            self.faults.append(fault)

    def reconnect(self) -> None:
        self.connected = True
        self._input_buffer = bytearray()
        self._output_buffers.clear()
        self.wire_faults.clear()

    # --- for the TCP server (hil.sim.server) -------------------------------------------------
    def take_output(self) -> bytes:
        """Everything the device has to send, each reply with its termination, at once.

        The same bytes :meth:`read` gives one at a time, for a server that writes a stream.
        """
        out = b"".join(bytes(buffer) for buffer in self._output_buffers)
        self._output_buffers.clear()
        return out

    def take_wire_fault(self) -> Fault | None:
        """The wire fault (``delay``/``split``) the replies just produced must suffer, if any."""
        return self.wire_faults.popleft() if self.wire_faults else None

    def clear(self) -> None:
        """Device clear (488.2): input and output dropped, parser reset; settings, status and
        error queue kept."""
        self._input_buffer = bytearray()
        self._output_buffers.clear()

    # --- messages -------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Bytes from the client; a complete message (ended by the query eom) is executed."""
        self._input_buffer.extend(data)
        eom = self._query_eom
        if self._input_buffer.endswith(eom):
            message = bytes(self._input_buffer[:-len(eom)] if eom else self._input_buffer)
        elif eom.endswith(b"\n") and self._input_buffer.endswith(b"\n"):
            # LF ends a message (488.2 7.5); a CR before it is white space, so an instrument
            # that sends CR LF also takes a bare LF (Lake Shore's own package writes LF only).
            message = bytes(self._input_buffer[:-1])
        else:
            return
        self._input_buffer = bytearray()
        reply = self._apply_fault(self.execute(message))
        if reply is not None and reply is not NoResponse:
            self._output_buffers.append(bytearray(reply) + self._response_eom)

    def execute(self, message: bytes) -> bytes | None:
        """One program message -> its response message (the units' replies joined by ``;``),
        or None if it has no reply."""
        plan = self._plans.get(message)
        if plan is not None:  # a query seen before: its canonical spelling, no parsing
            response = self._respond(plan)
            return None if response is NoResponse else response
        try:
            text = message.decode("ascii")
        except UnicodeDecodeError:
            self._refuse(message, ScpiError(-101, "non-ASCII byte"))
            return None
        replies: list[bytes] = []
        path: tuple[Node, ...] = ()
        try:
            units = split_units(text)
        except ScpiError as exc:
            self._refuse(message, exc)
            return None
        self._plan = None
        for unit_text in units:
            try:
                unit = parse_unit(unit_text)
                reply, path = self._execute_unit(unit, path)
            except ScpiError as exc:
                self._refuse(message, exc, unit_text)
                break  # the rest of the message is not executed (488.2 section 6.1.6)
            if reply is not None:
                replies.append(reply)
        if self._plan is not None and len(units) == 1:
            if len(self._plans) > 4096:
                self._plans.clear()
            self._plans[message] = self._plan
        return b";".join(replies) if replies else None

    def _refuse(self, message: bytes, exc: ScpiError, unit: str | None = None) -> None:
        where = f" (unit {unit.strip()!r})" if unit is not None and unit.strip() != message.decode(
            "ascii", "replace").strip() else ""
        self.refused.append((message, exc.code, exc.text))
        detail = f" [{exc.detail}]" if exc.detail else ""
        log.warning("%s: %r%s -> %d,\"%s\"%s", self.name, message, where, exc.code, exc.text, detail)
        self.push_error(exc.code, exc.text)

    def _execute_unit(self, unit: Unit, path: tuple[Node, ...]) -> tuple[bytes | None, tuple]:
        if unit.common:
            return self._common(unit), path
        nodes = unit.nodes if unit.rooted or not path else path + unit.nodes
        entries = self.index.lookup(nodes, unit.query)
        if not entries and nodes is not unit.nodes:
            nodes = unit.nodes  # leniency: a relative header that only makes sense from root
            entries = self.index.lookup(nodes, unit.query)
        new_path = nodes[:-1]
        if not entries:
            reply = self._error_queue_query(nodes, unit)
            if reply is not None:
                return reply, new_path
            if unit.query:
                log.warning("%s: query %r not understood: no reply (the client times out)",
                            self.name, unit.text.strip())
            raise ScpiError(-113, unit.header)
        return self._dispatch(unit, entries), new_path

    # --- common commands (488.2 section 10) ------------------------------------------------------
    def _common(self, unit: Unit) -> bytes | None:
        word = unit.nodes[0].word
        if word == "*CLS" and not unit.query:
            if self.errors is not None:
                self.errors.clear()
            self.esr = 0
            return None
        if word == "*RST" and not unit.query:
            self.reset(power_on=False)
            self._respond(b"*RST")  # a twin action bound to *RST, if any
            return None
        if word == "*ESR" and unit.query:
            value, self.esr = self.esr, 0
            return str(value).encode()
        if word in ("*ESE", "*SRE"):
            attr = word[1:].lower()
            if unit.query:
                return str(getattr(self, attr)).encode()
            if len(unit.params) != 1:
                raise ScpiError(-109 if not unit.params else -108)
            value = int(round(parse_numeric(unit.params[0], None)))
            if not 0 <= value <= 255:
                raise ScpiError(-222, unit.params[0])
            setattr(self, attr, value & (0xBF if attr == "sre" else 0xFF))
            return None
        if word == "*STB" and unit.query:
            return str(self._status_byte()).encode()
        if word == "*OPC":
            if unit.query:
                return b"1"  # every simulated operation completes at once
            self.esr |= ESR_OPC
            return None
        if word == "*WAI" and not unit.query:
            return None
        spelled = word + ("?" if unit.query else "")
        response = self._respond(spelled.encode())
        if response is not None:
            return None if response is NoResponse else response
        if word == "*TST" and unit.query:
            return b"0"
        if unit.query:
            log.warning("%s: query %r not understood: no reply (the client times out)",
                        self.name, unit.text.strip())
        raise ScpiError(-113, spelled)

    def _status_byte(self) -> int:
        stb = 0
        if self.errors is not None and self.errors.entries:
            stb |= 4
        if self._output_buffers:
            stb |= 16
        if self.esr & self.ese:
            stb |= 32
        if stb & self.sre:
            stb |= 64
        return stb

    def _error_queue_query(self, nodes: tuple[Node, ...], unit: Unit) -> bytes | None:
        """``SYST:ERR[:NEXT]?``, ``:ALL?``, ``:COUN?``, ``:CODE[:NEXT]?`` (SCPI-99 vol. 2, 21.8)."""
        if self.errors is None or not unit.query or len(nodes) < 2:
            return None
        words = [n.word for n in nodes]
        if not (words[0] in ("SYST", "SYSTEM") and words[1] in ("ERR", "ERROR")):
            return None
        rest = words[2:]
        if rest in ([], ["NEXT"]):
            return self.errors.pop().encode()
        if rest == ["ALL"]:
            return self.errors.pop_all().encode()
        if rest in (["COUN"], ["COUNT"]):
            return str(len(self.errors.entries)).encode()
        if rest in (["CODE"], ["CODE", "NEXT"]):
            return str(self.errors.entries.popleft()[0] if self.errors.entries else 0).encode()
        return None

    # --- profile commands ------------------------------------------------------------------------
    def _dispatch(self, unit: Unit, entries: list[Entry]) -> bytes | None:
        problem: ScpiError | None = None
        if unit.params and all(p.upper() in SPECIAL_CHOICES for p in unit.params):
            # ``:WAV? MIN``: the setting's own limits (in the unit of its mode) before a
            # dialogue a plain-pyvisa-sim profile spells for it.
            entries = sorted(entries, key=lambda e: e.kind != "get")
        for entry in entries:
            try:
                canonical = self._canonical(unit, entry)
            except ScpiError as exc:
                problem = problem or exc
                continue
            if canonical is None:
                continue
            if isinstance(canonical, bytes):
                if canonical.startswith(b"\x00reply:"):
                    return canonical[len(b"\x00reply:"):]
                response = self._respond(canonical)
                if response is None:
                    problem = problem or ScpiError(-224, unit.text.strip())
                    continue
                if unit.query and response is not NoResponse and not entry.extra.get("modes"):
                    self._plan = canonical
                return None if response is NoResponse else response
        if problem is not None:
            raise problem
        if not unit.params and any(e.params for e in entries):
            raise ScpiError(-109, unit.header)
        if unit.query:
            log.warning("%s: query %r not understood: no reply (the client times out)",
                        self.name, unit.text.strip())
        raise ScpiError(-108 if any(len(unit.params) > len(e.params) for e in entries)
                        else -224, unit.text.strip())

    def _canonical(self, unit: Unit, entry: Entry) -> bytes | None:
        """The profile's spelling of ``unit`` through ``entry`` (None: the entry does not fit)."""
        given = unit.params
        template = entry.params
        fixed = [p for p in template if not is_slot(p)]
        if entry.kind == "dialogue" or entry.kind == "get":
            n = len(template)
            if len(given) < n:
                return None
            for want, got in zip(template, given, strict=False):
                if not is_slot(want) and not same_token(got, want):
                    return None
            extra = given[n:]
            if entry.kind == "dialogue":
                return None if extra else spell(entry, given)
            mode = self._mode(entry)
            if not extra and mode is None:
                return spell(entry, given)
            if not extra:
                value = entry.prop.get_value()
            elif len(extra) == 1 and extra[0].upper() in SPECIAL_CHOICES and entry.prop is not None:
                value = self._special(entry, SPECIAL_CHOICES[extra[0].upper()])
            else:
                raise ScpiError(-108, unit.text.strip())
            if mode is None:
                return b"\x00reply:" + entry.reply_format.format(value).encode()
            shown = from_si(mode["unit"], to_si(wire_unit_of(entry), value))
            return b"\x00reply:" + mode.get("r", entry.reply_format).format(shown).encode()
        # a setter: fixed parameters first, then the value(s) for the slot
        if fixed and len(given) < len(fixed):
            return None
        head = given[:len(template) - 1] if template and is_slot(template[-1]) else given
        for want, got in zip(template, head, strict=False):
            if not is_slot(want) and not same_token(got, want):
                return None
        if not template or not is_slot(template[-1]):
            return None
        values = given[len(template) - 1:]
        if not values:
            raise ScpiError(-109, unit.header)
        value = self._convert(entry, values)
        filled = list(given[:len(template) - 1]) + [value]
        return spell(entry, tuple(filled))

    def _mode(self, entry: Entry) -> Mapping[str, Any] | None:
        """How another setting (Santec :SYST:COMM:COD, :POW:UNIT) changes this one's unit."""
        for setting, by_value in entry.extra.get("modes", {}).items():
            current = self._properties[setting].get_value()
            mode = by_value.get(current, by_value.get(str(current)))
            if mode is not None:
                return mode
        return None

    def _special(self, entry: Entry, word: str) -> Any:
        specs = getattr(entry.prop, "specs", None)
        if word == "DEF":
            return specs.type(entry.default) if specs is not None else entry.default
        bound = getattr(specs, "min" if word == "MIN" else "max", None) if specs else None
        if bound is None:
            raise ScpiError(-224, word)
        return bound

    def _convert(self, entry: Entry, values: tuple[str, ...]) -> str:
        """A setting's value(s) as sent -> as the profile stores it; range and type checked."""
        specs = getattr(entry.prop, "specs", None)
        if specs is None or (specs.type is str and not specs.valid):
            return ",".join(values)  # free text, or a multi-field command kept as typed
        if specs.type is str:  # character data (``INTernal``), or a list of them (``REAL,64``)
            for choice in specs.valid:
                fields = str(choice).split(",")
                if len(fields) == len(values) and all(
                        same_token(param_text(v), param_text(f))
                        for v, f in zip(values, fields, strict=True)):
                    return choice
            raise ScpiError(-224, ",".join(values))
        if len(values) > 1:
            raise ScpiError(-108, ",".join(values))
        token = values[0]
        upper = token.upper()
        if upper in SPECIAL_CHOICES and SPECIAL_CHOICES[upper] in ("MIN", "MAX", "DEF"):
            value = self._special(entry, SPECIAL_CHOICES[upper])
        elif upper in BOOLEANS:
            if not (specs.min == 0 and specs.max == 1) and entry.wire_unit != "bool":
                raise ScpiError(-104, token)
            value = BOOLEANS[upper]
        else:
            mode = self._mode(entry)
            if mode is None:
                value = parse_numeric(token, entry.wire_unit,
                                      suffix_allowed=entry.extra.get("suffixes", True))
            else:  # the value in the unit the mode speaks, kept in the profile's unit
                given = parse_numeric(token, mode["unit"],
                                      suffix_allowed=flag(mode.get("suffixes", True)))
                value = from_si(wire_unit_of(entry), to_si(mode["unit"], given))
        if specs.type is int:
            value = int(round(value))
        if (specs.min is not None and value < specs.min) or (
                specs.max is not None and value > specs.max):
            raise ScpiError(-222, token)
        if specs.valid and value not in specs.valid:
            raise ScpiError(-224, token)
        return repr(float(value)) if specs.type is float else str(value)

    def _respond(self, query: bytes) -> OptionalBytes | None:
        response = self._match_twin(query)
        if response is None:
            response = super()._match(query)
        return response

    def _match_twin(self, query: bytes) -> OptionalBytes | None:
        """Traces (text or binary blocks) and commands that make the twin act."""
        query = query.strip()
        if query in self.trace_queries:
            return self._properties[self.trace_queries[query]].reply(self)
        action = self.actions.get(query)
        if action is not None:
            action()
            return super()._match(query)  # the dialogue's own reply, if any
        return None

    def _apply_fault(self, response: OptionalBytes | None) -> OptionalBytes | None:
        if not self.faults:
            return response
        fault = self.faults[0]
        if fault.kind == "error":
            match = _CODE.match(fault.text)
            code, text = (int(match.group(1)), match.group(2)) if match else (-300, fault.text)
            self.push_error(code, text)
        elif response is None or response is NoResponse:
            return response  # reply faults wait for a command that has a reply
        elif fault.kind == "timeout":
            response = NoResponse
        elif fault.kind == "garbage":
            response = GARBAGE
        elif fault.kind in WIRE_FAULTS:
            self.wire_faults.append(Fault(fault.kind, text=fault.text, seconds=fault.seconds))
        fault.count -= 1
        if fault.count == 0:
            self.faults.popleft()
        return response

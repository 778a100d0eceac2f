"""A pyvisa-sim device that behaves more like the real box: SCPI spellings, reset, faults."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from pyvisa_sim.component import NoResponse, OptionalBytes
from pyvisa_sim.devices import Device

from hil.sim.scpi import HeaderIndex

FAULT_KINDS = ("timeout", "garbage", "error", "disconnect", "delay", "split")
#: Faults of the wire, not of the instrument: the reply is right, but the TCP server of
#: hil.sim.server sends it late (``delay``: ``seconds`` after it is ready, by default past a
#: VISA timeout) or in several TCP packets ``seconds`` apart (``split``). In-process there is no
#: wire: the reply arrives whole and at once.
WIRE_FAULTS = ("delay", "split")
GARBAGE = b"\x00\xff#?%\x13garbage"


@dataclass
class Fault:
    """One injected fault; ``count`` replies or commands it affects (disconnect: until reconnect)."""

    kind: str
    count: int = 1
    text: str = '-350,"Queue overflow"'
    seconds: float | None = None  # wire faults: the delay, or the pause between packets

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; known: {', '.join(FAULT_KINDS)}")
        if self.count < 1:
            raise ValueError(f"fault count must be >= 1, got {self.count}")
        if self.seconds is not None and not 0 <= self.seconds <= 3600:
            raise ValueError(f"fault seconds must be in [0, 3600], got {self.seconds}")


class SimDevice(Device):
    """pyvisa-sim's Device plus what instruments really do and tests need to provoke.

    * commands in any SCPI spelling reach the profile's canonical one (hil.sim.scpi);
    * ``*RST`` (or :meth:`reset`) returns every property to the profile's default;
    * :meth:`inject` queues faults: a dropped reply (the client times out), a garbage reply, an
      instrument error in the error queue, or a dropped connection until :meth:`reconnect`.
    """

    def __init__(self, name: str, delimiter: bytes) -> None:
        super().__init__(name, delimiter)
        self.faults: deque[Fault] = deque()
        self.connected = True
        self._defaults: dict[str, object] = {}
        self._headers: HeaderIndex | None = None
        self.spellings: list[str] = []  # every command the profile spells, set by the builder
        self.scpi_matching = True  # a profile of a non-SCPI instrument turns it off
        self.trace_queries: dict[bytes, str] = {}  # query -> twin trace property (binary-capable)
        self.actions: dict[bytes, Callable[[], None]] = {}  # command -> what the twin does
        self.wire_faults: deque[Fault] = deque()  # replies the TCP server must send oddly

    def remember_defaults(self) -> None:
        """Record the profile's values as what ``*RST`` restores (call once, after building)."""
        self._defaults = {name: prop.get_value() for name, prop in self._properties.items()
                          if _is_stored(prop)}

    def reset(self) -> None:
        for name, value in self._defaults.items():
            self._properties[name].set_value(str(value))
        for queue in self._error_queues.values():
            queue.clear()
        for register in self._status_registers.values():
            register.clear()
        self._output_buffers.clear()

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

    # --- pyvisa-sim hooks ------------------------------------------------------------------------
    def _match(self, query: bytes) -> OptionalBytes | None:
        if query.strip().upper() == b"*RST":
            self.reset()
        response = self._match_twin(query)
        if response is None:
            response = super()._match(query)
        if response is None and self.scpi_matching:
            canonical = self._header_index().canonical(query.decode("utf-8", "replace"))
            if canonical is not None and canonical.encode() != query:
                response = self._match_twin(canonical.encode())
                if response is None:
                    response = super()._match(canonical.encode())
        return self._apply_fault(response)

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
            for queue in self._error_queues.values():
                queue._queue.append(fault.text.encode())
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

    def _header_index(self) -> HeaderIndex:
        if self._headers is None:
            self._headers = HeaderIndex(self.spellings)
        return self._headers


def _is_stored(prop) -> bool:
    binding = getattr(prop, "binding", None)
    return binding is None or binding.kind == "state"

"""Third-party drivers against our simulation: one twin per module, reached two ways.

``bench`` is parametrised: ``in-process`` opens instruments on the twin-coupled pyvisa-sim
library directly; ``tcp`` serves the same kind of twin with ``hil twin serve``'s server (a thread
of this process, free loopback ports) and opens instruments through pyvisa-py sockets, as a lab
would reach a rack. Either way the test can ask the twin itself (``bench.world``) what the
reading should be. Each test starts from the instruments' power-up state.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pyvisa

from hil.sim.remote import pyvisa_py_library
from hil.sim.server import TwinServer, station_names, visa_address
from hil.station import SimTwin, open_twin
from hil.twin import TwinLab

TWIN = Path(__file__).resolve().parents[2] / "stations" / "twin.yaml"
TIMEOUT_S = 2.0  # nothing here should time out; if it does, fail in seconds


@dataclass
class Bench:
    """Where the instruments of one simulated lab are, in process or on sockets."""

    kind: str
    twin: SimTwin
    server: TwinServer | None = None

    @property
    def world(self) -> TwinLab:
        return self.twin.world

    @property
    def library(self) -> Any:
        """The VISA library a driver is given: the sim library, or pyvisa-py."""
        return self.twin.library if self.server is None else pyvisa_py_library()

    def address(self, name: str) -> str:
        """The VISA address of station instrument ``name`` (``laser``, ``fridge``...)."""
        if self.server is None:
            return self.twin.data["instruments"][name]["address"]
        return visa_address("127.0.0.1", self.server.endpoint(name).port)

    def terminations(self, name: str) -> dict[str, str]:
        device = self.twin.library.device(self.twin.data["instruments"][name]["address"])
        return {"write_termination": device._query_eom.decode(),
                "read_termination": device._response_eom.decode()}

    def open(self, name: str) -> pyvisa.resources.MessageBasedResource:
        resource = pyvisa.ResourceManager(self.library).open_resource(
            self.address(name), **self.terminations(name))
        resource.timeout = TIMEOUT_S * 1000
        return resource

    def device(self, name: str):
        """The simulated device behind ``name`` (its error queue, for assertions)."""
        return self.twin.library.device(self.twin.data["instruments"][name]["address"])


@pytest.fixture(scope="module", params=["in-process", "tcp"])
def bench_once(request) -> Iterator[Bench]:
    twin = open_twin(TWIN)
    if request.param == "in-process":
        yield Bench("in-process", twin)
        return
    with TwinServer(twin.library, names=station_names(twin.data), port_base=0) as server:
        yield Bench("tcp", twin, server)


@pytest.fixture
def bench(bench_once: Bench) -> Bench:
    """The module's bench, every instrument back at power-up (settings, queues, twin state)."""
    bench_once.twin.library.reset()
    return bench_once

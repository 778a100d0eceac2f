"""Simulation backend: pyvisa-sim profiles coupled to the physics twin.

Profiles in ``sim_profiles/`` are plain pyvisa-sim 1.1 files (they work with ``@sim``). This
backend loads the same files and honours extra keys that pyvisa-sim ignores:

* on a resource of the lab file (``sim_profiles/lab.yaml``): ``twin: <slot>`` binds the device to
  one instrument slot of the twin (``pump_laser``, ``power_meter``, ...);
* on a property of a device: ``twin: {state: <key>, unit: <wire unit>}`` makes every accepted set
  also update the twin's state ``<key>`` (in SI units), and
  ``twin: {reading: <key>, unit: <wire unit>}`` makes every get ask the twin for ``<key>`` (SI)
  and convert it to the wire unit.

Wire units understood: ``m``, ``nm``, ``pm``, ``Hz``, ``GHz``, ``THz``, ``W``, ``mW``, ``dBm``,
``K``, ``s``, ``1`` (dimensionless) and ``bool`` (``0``/``1``).

The same devices can be served on TCP sockets, one raw-SCPI port per instrument, by
:mod:`hil.sim.server` (``hil twin serve``); :mod:`hil.sim.remote` is the client side a station
with ``visalib: "@py"`` and ``twin_server:`` uses (the served clock, fault injection, pyvisa-py).
"""

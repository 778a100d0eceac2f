"""Parameter declarations the transduction steps share: laser powers, the VNA, the monitor.

Each is a :class:`hil.parameters.Param` whose range comes from the station (the role's driver
range narrowed by the station's ``limits:``), so ``hil run`` refuses a bad value before the run
starts.
"""

from __future__ import annotations

from hil.parameters import Check, Param, role_power_dbm, role_power_w, role_range, within

__all__ = ["CONVERSION_POINTS", "CONVERSION_SPAN", "LASER_POWER", "MONITOR_AVERAGES", "POWERS",
           "POWER_MAX", "POWER_MIN", "POWER_ORDER", "PUMP_POWER", "REFERENCE_OFFSET",
           "REFERENCE_POINTS", "VNA_AVERAGES", "VNA_IF_BANDWIDTH", "VNA_POWER", "Param"]


def LASER_POWER(help: str, zero: str = "the laser's bound on this station") -> Param:  # noqa: N802
    """A laser output power (W) inside the pump laser's range on this station; 0 = ``zero``."""
    return Param("W", role_power_w("pump"), help, zero=zero)


#: ``power_min_w`` must not exceed ``power_max_w`` (0 for either is the laser's bound).
POWER_ORDER = Check(
    lambda p: not (p["power_min_w"] and p["power_max_w"]) or p["power_min_w"] <= p["power_max_w"],
    "power_min_w ({power_min_w:g} W) must not exceed power_max_w ({power_max_w:g} W)")

VNA_IF_BANDWIDTH = Param("Hz", role_range("vna", "if_bandwidth"), "VNA IF bandwidth")
VNA_POWER = Param("dBm", role_power_dbm("vna"), "VNA source power")
VNA_AVERAGES = Param("", within(role_range("vna", "averages"), 1, 10_000),
                     "VNA sweeps averaged per trace")
MONITOR_AVERAGES = Param("", within(role_range("monitor", "averages"), 1, 10_000),
                         "Readings the monitor meter averages")

PUMP_POWER = LASER_POWER("Laser output power", zero="efficiency_vs_pump's operating point (C = 1 "
                         "within the laser's range), else the laser's maximum")
POWERS = Param("", (1, 200), "Number of laser powers (log-spaced)")
POWER_MIN = LASER_POWER("Lowest laser output power")
POWER_MAX = LASER_POWER("Highest laser output power")

# The conversion windows (see experiments.transduction.vna.conversion_windows).
CONVERSION_SPAN = Param("", (1.0, 100.0), "Conversion window, in microwave linewidths around f_m")
CONVERSION_POINTS = Param("", (11, 20001), "Points of the conversion window")
REFERENCE_OFFSET = Param("Hz", (0.0, 1e12), "Reference window's offset above f_m (at least 5 "
                         "linewidths)", zero="20 times the larger linewidth")
REFERENCE_POINTS = Param("", (3, 20001), "Points of the reference window")

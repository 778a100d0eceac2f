"""Power units for the framework, the twin and the fits: dBm <-> W (dBm/Hz <-> W/Hz alike).

Drivers keep their own scalar pair in ``instruments/_scpi.py``: a driver must not depend on the
framework that uses it.
"""

from __future__ import annotations

import numpy as np


def dbm_to_w(power_dbm):
    """W from dBm (0 dBm = 1 mW); arrays in, arrays out."""
    return 1e-3 * 10.0 ** (np.asarray(power_dbm, dtype=float) / 10.0)


def w_to_dbm(power_w):
    """dBm from W; arrays in, arrays out."""
    return 10.0 * np.log10(np.asarray(power_w, dtype=float) / 1e-3)

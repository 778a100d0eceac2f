"""The physics twin of the transducer lab: plain numpy, no VISA.

`hil.sim` asks a :class:`~hil.twin.lab.TwinLab` for what simulated instruments read; the twin
knows nothing of SCPI, profiles or drivers.
"""

from hil.twin.lab import TwinLab
from hil.twin.optical import OpticalCavity
from hil.twin.params import TwinParams

__all__ = ["OpticalCavity", "TwinLab", "TwinParams"]

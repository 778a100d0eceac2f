"""The station files shipped with qlink-hil (the simulated lab, its TCP variant, Profile B).

A package so that a regular (non-editable) install carries them: ``hil run chain`` finds
``twin.yaml`` here when the working folder has no ``stations/twin.yaml`` of its own.
"""

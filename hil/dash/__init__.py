"""``hil dash``: a read-only live view of the lab in the browser.

Runs newest first, a run's steps with their progress and live plots, results, events, the lab's
calibrations and interlocks. It reads run files the way ``hil show`` does (``hil.store``) through
a :class:`~hil.dash.source.RunSource`; it never writes a run file and never opens an instrument.
"""

from hil.dash.source import FolderSource, RunSource, RunSummary

__all__ = ["FolderSource", "RunSource", "RunSummary"]

"""The run catalog: every run indexed, and the calibration history, in one database.

SQLite beside the runs by default (nothing to start), any SQLAlchemy URL (``--catalog`` or
``$HIL_CATALOG``) for a catalog several control machines share. The run files stay the truth:
:func:`rebuild` re-indexes a folder of them. See docs/catalog.md.
"""

from hil.catalog.db import CalibrationRow, Catalog, CatalogError, CatalogURLError, RunEntry
from hil.catalog.index import (
    ENV_VAR,
    CatalogMissing,
    catalog_url,
    entry_from_file,
    import_legacy,
    open_catalog,
    rebuild,
    refresh_running,
    sqlite_path,
    station_name,
)
from hil.catalog.trend import cooldown_boundaries, trend

__all__ = ["ENV_VAR", "CalibrationRow", "Catalog", "CatalogError", "CatalogMissing", "CatalogURLError",
           "RunEntry",
           "catalog_url", "cooldown_boundaries", "entry_from_file", "import_legacy",
           "open_catalog", "rebuild", "refresh_running", "sqlite_path", "station_name", "trend"]

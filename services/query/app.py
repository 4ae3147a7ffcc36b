"""The JSON API lives in :mod:`services.query.api`; this name stays for its importers."""

from services.query.api import ApiContext, api_app
from services.query.api.history import (  # bench/queries.py reads the export's CSV
    EXPORT_COLUMNS,
    _cell,
    _csv_line,
)

__all__ = ["EXPORT_COLUMNS", "ApiContext", "_cell", "_csv_line", "api_app"]

"""planning.workflows: A planning workflow: forecast for a season, then week-by-week monitoring against
actuals.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
"""

from .._table import Table
from ..rows_generated import Workflows

T = Table("planning", "workflows", Workflows)
get, insert, update, delete, upsert, page, load = (T.get, T.insert, T.update, T.delete, T.upsert, T.page, T.load)

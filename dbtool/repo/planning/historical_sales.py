"""planning.historical_sales: Weekly unit sales per store and category; the training data for
forecasts.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
"""

from .._table import Table
from ..rows_generated import HistoricalSales

T = Table("planning", "historical_sales", HistoricalSales)
get, insert, update, delete, upsert, page, load = (T.get, T.insert, T.update, T.delete, T.upsert, T.page, T.load)

"""planning.store_clusters: Groups of similar stores (size, format, income, region) that are planned
together.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
"""

from .._table import Table
from ..rows_generated import StoreClusters

T = Table("planning", "store_clusters", StoreClusters)
get, insert, update, delete, upsert, page, load = (T.get, T.insert, T.update, T.delete, T.upsert, T.page, T.load)

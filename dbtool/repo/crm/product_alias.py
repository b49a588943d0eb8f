"""crm.product_alias: Label normalization: maps a normalized product label found in sales files to a
product_key.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
"""

from .._table import Table
from ..rows_generated import ProductAlias

T = Table("crm", "product_alias", ProductAlias)
get, insert, update, delete, upsert, page, load = (T.get, T.insert, T.update, T.delete, T.upsert, T.page, T.load)

"""crm.product: Product dimension (wines) with aroma profile, premium tier and season tags; source of
recommendations.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
"""

from .._table import Table
from ..rows_generated import Product

T = Table("crm", "product", Product)
get, insert, update, delete, upsert, page, load = (T.get, T.insert, T.update, T.delete, T.upsert, T.page, T.load)

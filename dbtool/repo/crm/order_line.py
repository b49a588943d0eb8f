"""crm.order_line: Normalized sales transactions, one row per invoice/order line.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
"""

from .._table import Table
from ..rows_generated import OrderLine

T = Table("crm", "order_line", OrderLine)
get, insert, update, delete, page, load = (T.get, T.insert, T.update, T.delete, T.page, T.load)

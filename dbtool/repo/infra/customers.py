"""infra.customers: Customer accounts of OptiInfra, with their plan and status.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
"""

from .._table import Table
from ..rows_generated import Customers

T = Table("infra", "customers", Customers)
get, insert, update, delete, upsert, page, load = (T.get, T.insert, T.update, T.delete, T.upsert, T.page, T.load)

"""infra.agents: Agents registered with the platform; global, shared by all customers.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
"""

from .._table import Table
from ..rows_generated import Agents

T = Table("infra", "agents", Agents)
get, insert, update, delete, upsert, page, load = (T.get, T.insert, T.update, T.delete, T.upsert, T.page, T.load)

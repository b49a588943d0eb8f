"""crm.contact_event: Contact history; a customer contacted within the silence window is not
recommended again.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
"""

from .._table import Table
from ..rows_generated import ContactEvent

T = Table("crm", "contact_event", ContactEvent)
get, insert, update, delete, page, load = (T.get, T.insert, T.update, T.delete, T.page, T.load)

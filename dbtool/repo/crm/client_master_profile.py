"""crm.client_master_profile: Consolidated per-customer features: RFM, top-2 preferences, aroma
profile, diversity, confidence.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
"""

from .._table import Table
from ..rows_generated import ClientMasterProfile

T = Table("crm", "client_master_profile", ClientMasterProfile)
get, insert, update, delete, upsert, page, load = (T.get, T.insert, T.update, T.delete, T.upsert, T.page, T.load)

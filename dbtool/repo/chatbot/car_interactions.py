"""chatbot.car_interactions: What a user did with a car shown in a session; append-only.

Key and columns come from the catalog snapshot; see dbtool/repo/_table.py for what each function does.
"""

from .._table import Table
from ..rows_generated import CarInteractions

T = Table("chatbot", "car_interactions", CarInteractions)
get, insert, update, delete, page, load = (T.get, T.insert, T.update, T.delete, T.page, T.load)

"""The repository functions applications call, in one place (each lives in the module named for it)."""

from .embeddings import SearchHit, add_embeddings, search_similar
from .erase import erase_phone
from .summaries import (
           daily_volume,
           funnel,
           messages_per_intent,
           response_time_percentiles,
           sentiment_distribution,
           summary,
)

__all__ = ["SearchHit", "add_embeddings", "search_similar", "erase_phone", "summary", "messages_per_intent",
           "sentiment_distribution", "response_time_percentiles", "daily_volume", "funnel"]

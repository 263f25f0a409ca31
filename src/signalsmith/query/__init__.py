"""The read-only query API over the SQL store, under ``/api``: decisions, tickers with their
consensus, and mention spikes, as JSON or CSV. Mounted on the service's FastAPI app."""

from signalsmith.query.access import ApiAccess, is_loopback
from signalsmith.query.routes import query_router

__all__ = ["ApiAccess", "is_loopback", "query_router"]

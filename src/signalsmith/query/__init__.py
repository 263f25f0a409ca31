"""The read-only query API over the SQL store, under ``/api``: decisions, tickers with their
consensus, and mention spikes, as JSON or CSV. Mounted on the service's FastAPI app
(``routes.query_router``); ``access`` decides who may use it."""

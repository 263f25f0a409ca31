"""Sources: where posts come from (Redis Streams, files)."""

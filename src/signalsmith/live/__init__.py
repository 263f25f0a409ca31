"""The live feed: decisions as they are logged, to browsers over server-sent events."""

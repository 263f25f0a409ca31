"""Observability: metrics, logging and the health snapshot."""

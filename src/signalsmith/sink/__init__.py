"""Sinks: everything downstream of a decision."""

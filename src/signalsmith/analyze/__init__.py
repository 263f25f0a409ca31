"""Analyzers: turn a post into opinions per ticker."""

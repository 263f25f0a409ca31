"""The pipelines: each a handler the engine drives, with its settings and outputs."""

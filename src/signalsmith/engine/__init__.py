"""The engine: consumer-group mechanics that drive a pipeline's handler."""

"""signalsmith: market chatter in, validated trading signals out, over Redis Streams."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("signalsmith")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]

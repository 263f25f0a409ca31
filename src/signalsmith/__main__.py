"""``python -m signalsmith``: the same as the ``signalsmith`` command."""

from signalsmith.cli import main

main()

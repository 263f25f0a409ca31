"""The offline finance lexicon and rule engine: a text in, an ``Opinion`` (or one per ticker) out,
with the ``Signals`` that say how settled it is; no network, no model files.

tables (the data: phrases, weights, word sets) · entries (the phrase trie built from them) ·
tokens · match · context · score (with modifiers and figures) · attribute · opinion ·
judge (``Lexicon``, the one public name: the stages in order)
"""

from signalsmith.analyze.lexicon.judge import Lexicon

__all__ = ["Lexicon"]

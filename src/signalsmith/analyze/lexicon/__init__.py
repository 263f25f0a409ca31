"""The offline finance lexicon and rule engine: a text in, an ``Opinion`` (or one per ticker) out,
with the ``Signals`` that say how settled it is; no network, no model files.

Its private modules, in the order a text meets them: _tables (the data: phrases, weights,
word sets) · _entries (the phrase trie built from them) · _tokens · _match · _context ·
_score (with _modifiers and _figures) · _attribute · _opinion · _judge (``Lexicon``, the one
public name: the stages in order). Their names are public to one another, not outside.
"""

from signalsmith.analyze.lexicon._judge import Lexicon

__all__ = ["Lexicon"]

"""The verbs: what the shells (``cli``, ``ui``, ``serve``) call, and the one layer that
knows every stage.

:class:`~lookalike.verbs.library.Library` (``lookalike.open(db)``) holds the verbs that
do work of their own (ingest, search, analyze, removals) and hands out its parts, each a
module here: the current space's view (:mod:`.space`, what the stages are handed), the
people and API keys (:mod:`.people`), pictures made from faces (:mod:`.pictures`), index
upkeep (:mod:`.maintenance`), exploration and evaluation (:mod:`.measurements`), the
removal verbs' bodies (:mod:`.removal`) and a library's copy to another database
(:mod:`.transfer`). Their layers, top to bottom, are an import-linter contract in
``pyproject.toml``: library, removal | transfer, people | pictures, maintenance |
measurements, space. Nothing is imported here: ``import lookalike`` stays light.
"""

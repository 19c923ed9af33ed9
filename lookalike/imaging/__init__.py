"""Faces of their own: average faces, morphs, face math and sliders drawn as pictures.

The stages here are handed pixels and landmarks, never a library. An option out of its range
(a size, a frame count, a strength) is the caller's user's to fix: a ``ConfigError``. Arrays
that break a stage's own contract (a shape, landmarks of two models, no faces at all) are
the calling layer's bug, checked there first (``lookalike.verbs.pictures``): a ``ValueError``, which
the server logs as a 500 instead of telling a client its option was wrong."""

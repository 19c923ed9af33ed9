"""Faces of their own: average faces, morphs, face math and sliders drawn as pictures."""

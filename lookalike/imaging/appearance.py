"""A statistical appearance model: the main ways faces of a corpus differ, as pictures.

``explore pca`` shows the real faces at each end of an axis of the embedding space; this
model draws new ones. It is the combined appearance model of Cootes, Edwards and Taylor:

* shape: every face's landmarks fitted onto the Procrustes mean (:mod:`.geometry`), so
  what remains is form, not pose;
* texture: every face warped onto the mean shape (shape-normalised), inside a soft mask
  round the face (backgrounds differ more than faces do and would take the first
  components for themselves), in sRGB's own encoding, where steps are steps the eye sees
  (in linear light, until 2026-12-07, the darker end of a component went below black: a
  burnt red-black face at -2σ where a darker one was meant);
* one PCA (scikit-learn's, a dependency already) over both, shape scaled so the two weigh
  the same in total variance, so each component moves form and colour together — a
  component that makes the face longer also makes it look as long faces look.

:func:`draw` renders the face ``sigma`` standard deviations along one component: the
slider picture; :attr:`AppearanceModel.shares` is the share of the variance each
component explains. Every texture is held in memory while fitting (``size`` px per face:
at the default 128 px a thousand faces take ~200 MB), so a caller fitting a large corpus
passes a sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from . import colour, geometry
from .average import Accumulator

DEFAULT_SIZE = 128
DEFAULT_COMPONENTS = 8
MASK_GROWTH = 1.25  # the texture mask: the landmarks' hull grown this much about its centre
MASK_FEATHER = 0.08  # its soft edge, as a share of the frame
MAX_SIGMA = 4.0
MIN_FACES = 3  # two faces span one direction: no model worth a slider
COVER = 5  # photos a pixel round the face needs to be drawn (as a group's average asks)


@dataclass(frozen=True)
class AppearanceModel:
    """A fitted model; every array is in the ``size`` px frame of :mod:`.geometry`."""

    size: int
    mean_shape: np.ndarray  # (N, 2)
    mean_texture: np.ndarray  # (size, size, 3) float32, sRGB encoded, 0..1
    shape_weight: float  # shape coordinates are multiplied by this before the PCA
    components: np.ndarray  # (k, 2N + size*size*3) unit rows
    sd: np.ndarray  # (k,) standard deviation of the faces along each component
    shares: np.ndarray  # (k,) share of the total variance each explains
    count: int  # faces fitted

    @property
    def points(self) -> int:
        return len(self.mean_shape)


def fit(faces: Sequence[tuple[np.ndarray, np.ndarray]], components: int = DEFAULT_COMPONENTS,
        size: int = DEFAULT_SIZE) -> AppearanceModel:
    """The model of ``faces``, (RGB uint8 photo, (N, 2) landmarks) pairs, with at most
    ``components`` components (never more than faces - 1)."""
    from sklearn.decomposition import PCA

    if len(faces) < MIN_FACES:  # the caller counts readable faces first (TooFewPeople)
        raise ValueError(f"appearance model: {len(faces)} faces given; at least {MIN_FACES} are needed")
    if components < 1:
        raise ConfigError(f"appearance model: {components} components asked; at least 1")
    mean = geometry.mean_shape([p for _, p in faces], size)
    mask = texture_mask(mean, size)[..., None]
    shapes = np.empty((len(faces), mean.size), dtype=np.float32)
    textures = np.empty((len(faces), size * size * 3), dtype=np.float32)
    # the unmasked mean, drawn round the face: an average's (photos' coverage, then a fill; not
    # the tight crops' replicated edges, which drew a pillar over the head and streaks)
    whole = Accumulator(mean, size, cover=min(len(faces), COVER))
    for row, (image, points) in enumerate(faces):
        points = geometry.check_points(points)
        if len(points) != len(mean):
            raise ValueError(f"appearance model: face {row} has {len(points)} landmarks, the others {len(mean)}")
        shapes[row] = geometry.apply(geometry.similarity(points, mean), points).ravel()
        encoded = whole.add(image, points).astype(np.float32) / 255.0  # warped onto the mean shape once
        textures[row] = (encoded * mask).ravel()
    shapes -= mean.ravel().astype(np.float32)
    textures -= textures.mean(axis=0)
    shape_var, texture_var = float((shapes ** 2).sum()), float((textures ** 2).sum())
    weight = float(np.sqrt(texture_var / max(shape_var, 1e-12)))
    data = np.hstack([shapes * weight, textures])
    pca = PCA(n_components=min(components, len(faces) - 1), svd_solver="full" if len(faces) <= 500 else "randomized",
              random_state=0)
    pca.fit(data)
    return AppearanceModel(size=size, mean_shape=mean, mean_texture=colour.to_srgb_float(whole.linear()),
                           shape_weight=weight,
                           components=pca.components_.astype(np.float32),
                           sd=np.sqrt(pca.explained_variance_).astype(np.float32),
                           shares=pca.explained_variance_ratio_.astype(np.float32), count=len(faces))


def texture_mask(shape: np.ndarray, size: int) -> np.ndarray:
    """float32 (size, size): the soft region round the face whose texture the model learns."""
    return geometry.face_mask(shape, (size, size), MASK_FEATHER * size, MASK_GROWTH)


def render(model: AppearanceModel, sigmas: Sequence[float]) -> np.ndarray:
    """The face at ``sigmas[i]`` standard deviations along component ``i`` (missing ones
    at 0): RGB uint8, ``model.size`` px. Several sliders at once."""
    weights = np.zeros(len(model.sd), dtype=np.float32)
    given = np.asarray(sigmas, dtype=np.float32)[: len(weights)]
    if given.size and float(np.abs(given).max()) > MAX_SIGMA:
        raise ConfigError(f"appearance: a slider goes from -{MAX_SIGMA} to {MAX_SIGMA} standard deviations")
    weights[: given.size] = given
    params = (weights * model.sd) @ model.components
    n = model.mean_shape.size
    shape = model.mean_shape + params[:n].reshape(-1, 2) / model.shape_weight
    texture = colour.into_gamut(model.mean_texture + params[n:].reshape(model.size, model.size, 3))
    # the mean shape's own triangles, moved without folding (a fold broke a cheek into dots)
    tris = geometry.frame_triangles(model.mean_shape, model.size)
    edge = geometry.boundary(model.mean_shape, model.size)
    moved = geometry.unfolded(np.vstack([model.mean_shape, edge]), np.vstack([shape, edge]), tris)[: len(shape)]
    raster = geometry.frame_raster(model.mean_shape, moved, model.size, tris)
    warp = geometry.frame_warp(model.mean_shape, model.mean_shape, raster, model.size)
    drawn = warp.apply(np.ascontiguousarray(texture, dtype=np.float32))
    return np.clip(np.rint(drawn * 255.0), 0, 255).astype(np.uint8)


def draw(model: AppearanceModel, component: int, sigma: float) -> np.ndarray:
    """The face ``sigma`` standard deviations along ``component`` (0-based): one slider picture."""
    if not 0 <= component < len(model.sd):
        raise ConfigError(f"appearance: component {component} asked; the model has 0..{len(model.sd) - 1}")
    sigmas = [0.0] * len(model.sd)
    sigmas[component] = sigma
    return render(model, sigmas)

"""lookalike.imaging on real photos (issue 25 §4): averages that are still the person,
morphs that go from A to B, transforms that age a face but keep its identity and its skin
tone in every group, appearance sliders, and pictures without holes or mirrored borders.

Landmarks come from one helper (bench/_landmarks.py: YuNet + the face mesh the product uses),
the same 468 points ingest stores and lookalike.verbs.pictures draws from. Identity is judged by lookalike's own
pipeline (SFace + YuNet + ArcFace alignment) and its calibrated thresholds; age by the
offline analyzer (Cydral's networks).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from _landmarks import Landmarker, cheek_masks
from PIL import Image

from lookalike.config import DEFAULT_CALIBRATIONS
from lookalike.errors import ConfigError
from lookalike.imaging import appearance, average, colour, geometry, morph, transform

THRESHOLD, FLOOR = DEFAULT_CALIBRATIONS["SFace__yunet__arcface"]
RACES = ("white", "black", "asian", "indian")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _load(path: Path, side: int = 800) -> np.ndarray:
    """The photo, its long side at most ``side`` px (detection and warps cost less; the
    frame is 256 px anyway)."""
    with Image.open(path) as picture:
        picture = picture.convert("RGB")
        picture.thumbnail((side, side))
        return np.asarray(picture)


@pytest.fixture(scope="module")
def marks(weights_home) -> Landmarker:
    return Landmarker()


@pytest.fixture(scope="module")
def pipeline(weights_home):
    from lookalike.config import DEFAULT_ALIGNER, DEFAULT_DETECTOR, DEFAULT_MODEL
    from lookalike.faces.pipeline import FacePipeline, Space

    return FacePipeline(Space(DEFAULT_MODEL, DEFAULT_DETECTOR, DEFAULT_ALIGNER), 1280)


def _vector(pipeline, rgb: np.ndarray) -> np.ndarray:
    from lookalike.faces.pipeline import FacesMode

    found = pipeline.faces(rgb, FacesMode.largest)
    assert found, "no face found in a picture the imaging stage made"
    return found[0].embedding


def _faces(marks: Landmarker, paths: list[Path]) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for path in paths:
        rgb = _load(path)
        got = marks(rgb)
        if got is not None:
            out.append((rgb, got[1]))
    return out


def _not_blank(image: np.ndarray) -> None:
    assert image.dtype == np.uint8 and image.ndim == 3
    assert float(image.std()) > 10, "a blank (flat) picture"


# ---- geometry: every pixel drawn, borders repeated, never mirrored -------------------------

def test_a_warp_fills_every_pixel_and_repeats_the_border_never_mirrors_it(faces, marks):
    """A UTKFace crop is tighter than the frame, so part of the frame comes from beyond the
    photo's edge: there it must be the edge's own colour (replicated), never the face
    reflected; inside, every pixel belongs to a triangle (no black holes or cracks)."""
    path = sorted((faces / "utkface-dev" / "images").glob("*.jpg"))[50]
    rgb = np.maximum(_load(path), 1)  # no black pixel in the source...
    rgb[0, :], rgb[-1, :], rgb[:, 0], rgb[:, -1] = (0, 255, 0), (0, 255, 0), (0, 255, 0), (0, 255, 0)
    points = marks(rgb)[1]
    size = 256
    shape = geometry.mean_shape([points], size)
    raster = geometry.frame_raster(shape, shape, size)
    warp = geometry.frame_warp(points, shape, raster, size)
    out = warp.apply(rgb)
    assert raster.inside.all(), "some frame pixels belong to no triangle"
    assert (out.astype(int).sum(axis=2) > 0).all(), "...so no black pixel in the warped frame"
    beyond = warp.coverage(rgb.shape, 1e-3) == 0  # pixels that come from outside the photo
    assert beyond.sum() > 1000, "the test needs a frame reaching beyond the crop"
    assert (out[beyond] == (0, 255, 0)).all(), "beyond the photo's edge: the edge repeated, nothing else"


# ---- averages --------------------------------------------------------------------------------

def test_a_persons_average_face_is_that_person(faces, marks, pipeline):
    """celeb people with >= 5 photos: each one's average face (all their photos warped to
    their mean shape, averaged in linear light) is nearer that person's centroid than any
    other person's in >= 90 % of people, and the same person as the centroid."""
    people: dict[str, list[Path]] = {}
    for row in _rows(faces / "celeb" / "MANIFEST.tsv"):
        people.setdefault(row["identity"], []).append(faces / "celeb" / row["path"])
    people = {name: paths[:5] for name, paths in sorted(people.items()) if len(paths) >= 5}
    assert len(people) >= 10
    centroids, averages = {}, {}
    for name, paths in people.items():
        found = _faces(marks, paths)
        assert len(found) >= 5, name
        vectors = np.stack([_vector(pipeline, rgb) for rgb, _ in found])
        mean = vectors.mean(axis=0)
        centroids[name] = mean / np.linalg.norm(mean)
        averages[name] = average.average(found, 256)
        assert averages[name].count == len(found)
    names = sorted(people)
    matrix = np.stack([centroids[n] for n in names])
    right = 0
    for name in names:
        picture = averages[name].image
        _not_blank(picture)
        sims = matrix @ _vector(pipeline, picture)
        right += names[int(np.argmax(sims))] == name
        assert sims[names.index(name)] >= THRESHOLD, f"{name}'s average is not the same person as their centroid"
    assert right / len(names) >= 0.9, f"{right} of {len(names)} averages nearest their own person"


def test_an_average_streams_through_running_sums(faces, marks):
    """The same average from a generator (mean shape first, then one photo at a time) as
    from a list: nothing but the running sums is kept."""
    paths = sorted((faces / "utkface-dev" / "images").glob("*.jpg"))[:8]
    found = _faces(marks, paths)
    whole = average.average(found, 128)
    shape = geometry.mean_shape([p for _, p in found], 128)
    streamed = average.average(((rgb, p) for rgb, p in found), 128, shape=shape)
    assert np.array_equal(whole.image, streamed.image) and streamed.count == len(found)
    _not_blank(whole.image)


def test_an_average_of_tight_crops_is_shown_as_the_face_not_a_face_in_a_box(faces, marks):
    """The frame leaves a face half its side for hair and shoulders; a person's photos that
    stop at the face (faceapi_bbt's crops) or at a narrow portrait (Paul Rudd's one photo)
    were a small face in a box of blurred fill. The picture shown is the square the photos
    cover, the face at least 1.1x its box; ordinary photos keep the whole frame."""
    size = 256
    for paths in (sorted((faces / "celeb/faceapi_bbt/sheldon").iterdir()),
                  [faces / "celeb/facenet_pytorch/paul_rudd/1.jpg"]):
        found = _faces(marks, paths)
        made = average.average(found, size)
        assert made.window is not None, paths[0]
        x, y, side = made.window
        acc = average.Accumulator(made.shape, size)
        for rgb, points in found:
            acc.add(rgb, points)
        trust = acc.trust()[..., 0]
        fill_before = float((trust < 0.5).mean())
        shown = trust[y:y + side, x:x + side]
        assert float((shown < 0.5).mean()) < fill_before / 2, (paths[0], fill_before)
        picture, shape = average.framed(made.image, made.shape, made.window)
        assert picture.shape == made.image.shape
        extent = float((shape.max(axis=0) - shape.min(axis=0)).max()) / size
        assert 0.8 < extent <= 1 / average.FACE_MARGIN + 0.01, extent  # was 0.5 of the frame; never cut
        _not_blank(picture)
    lfw = _faces(marks, sorted((faces / "lfw-dev/images/Colin_Powell").glob("*.jpg"))[:5])
    assert len(lfw) >= 3 and average.average(lfw, size).window is None
    nothing = np.zeros((size, size, 1), dtype=np.float32)  # no photo covers a pixel, the face fills the frame
    assert average.covered_square(nothing, np.array([[0.0, 0.0], [255.0, 0.0], [128.0, 255.0]])) is None


def test_a_morph_of_two_tight_crops_fills_the_frame_without_streaks(faces, marks):
    """Two crops smaller than the frame round their faces: the frame beyond them was their
    replicated edge pixels, streaks across the top of every frame (mean |dx| 3.35 there,
    2026-12-07); now the fill an average has, smooth across (0.08)."""
    a, b = _faces(marks, [faces / "celeb/faceapi_bbt/sheldon/sheldon1.png",
                          faces / "utkface-dev/images/1_0_2_20161219222456375.jpg.chip.jpg"])
    middle = morph.frames(a, b, 5, 256)[2]
    top = middle[:40].astype(float)  # above the head: neither crop reaches it
    assert np.abs(np.diff(top, axis=1)).mean() < 1.0
    _not_blank(middle)


def test_colours_past_the_range_lose_saturation_not_hue_and_a_moved_mesh_never_folds():
    """Clipping each channel on its own turned a slider's darker face red-black; a mesh
    moved past its neighbours tore a turned face's cheek."""
    weights = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    pixels = np.array([[[1.3, 0.6, -0.2], [0.2, -0.3, -0.1], [0.5, 0.4, 0.3]]], dtype=np.float32)
    fitted = colour.into_gamut(pixels)
    assert fitted.min() >= 0 and fitted.max() <= 1
    assert np.allclose(fitted[0, 2], pixels[0, 2])  # in range: untouched
    luma = pixels[0, 0] @ weights
    assert float(fitted[0, 0] @ weights) == pytest.approx(luma, abs=1e-5)  # its lightness kept
    spread = (fitted[0, 0] - luma) / (pixels[0, 0] - luma)  # one factor for every channel: the same hue
    assert np.allclose(spread, spread[0], atol=1e-5) and 0 < spread[0] < 1
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10], [5, 5]], dtype=np.float64)
    tris = geometry.triangles(square)
    crossed = square.copy()
    crossed[4] = (15, 5)  # the centre moved past the right edge: its triangles turn over
    moved = geometry.unfolded(square, crossed, tris)

    def areas(points):
        a, b, c = points[tris[:, 0]], points[tris[:, 1]], points[tris[:, 2]]
        return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])

    assert np.all(areas(moved) * np.sign(areas(square)) > 0) and 5 < moved[4, 0] < 10  # moved, as far as it may
    assert np.array_equal(geometry.unfolded(square, square + 0.5, tris), square + 0.5)  # no fold: as asked


def test_a_group_average_shows_no_margin_fewer_photos_than_its_people_have(faces, marks):
    """One wide photo among tight crops: with ``cover=1`` (a person's average) the frame's
    margin is that photo's own suit and curtains; a group's ``cover`` of 5 fades what fewer
    photos have into the fill, so no member shows around the blended face (a group average
    of 7 people was George Clooney's photo outside the face)."""
    wide = _faces(marks, [faces / "celeb" / "face_recognition" / "barack_obama" / "obama.jpg"])
    crops = _faces(marks, sorted((faces / "utkface-dev" / "images").glob("*.jpg"))[:4])
    assert len(wide) == 1 and len(crops) == 4
    shape = geometry.mean_shape([p for _, p in wide + crops], 256)

    def drawn(cover: int, members: list) -> np.ndarray:
        acc = average.Accumulator(shape, 256, cover)
        for rgb, points in members:
            acc.add(rgb, points)
        return acc.result().image[216:].astype(float)  # the bottom band: only the wide photo reaches it

    alone, as_person, as_group = drawn(1, wide), drawn(1, wide + crops), drawn(5, wide + crops)
    assert np.abs(as_person - alone).mean() < 1.0  # the photo's own margin, as a person's average keeps it
    assert np.abs(as_group - alone).mean() > 40.0
    assert abs(np.corrcoef(as_group.ravel(), alone.ravel())[0, 1]) < 0.5
    with pytest.raises(ValueError, match="at least one photo"):
        average.Accumulator(shape, 256, 0)


def test_any_landmark_model_works(faces, marks):
    """Nothing knows what a point means: half the points, or twice as many (each point and
    the midpoint to the next), average, morph and fit alike."""
    paths = sorted((faces / "utkface-dev" / "images").glob("*.jpg"))[100:106]
    found = _faces(marks, paths)
    for variant in (lambda p: p[::2], lambda p: np.vstack([p, (p[:-1] + p[1:]) / 2])):
        faces_n = [(rgb, variant(points)) for rgb, points in found]
        _not_blank(average.average(faces_n, 128).image)
        for frame in morph.frames(faces_n[0], faces_n[1], 3, 128):
            _not_blank(frame)
        _not_blank(appearance.draw(appearance.fit(faces_n, 2, 64), 0, 1.0))


# ---- morphs ----------------------------------------------------------------------------------

def test_a_morph_goes_from_a_to_b(faces, marks, pipeline, tmp_path):
    """First frame: A (same person); last frame: B; the similarity to A falls almost
    monotonically along the frames (a rise of at most 0.05 between neighbours)."""
    a_path = faces / "celeb" / "deepface" / "deepface_id01" / "img1.jpg"
    b_path = faces / "celeb" / "faceapi_bbt" / "sheldon" / "sheldon1.png"
    (a, pa), (b, pb) = _faces(marks, [a_path, b_path])
    frames = morph.frames((a, pa), (b, pb), 9, 256)
    assert len(frames) == 9
    for frame in frames:
        _not_blank(frame)
    va, vb = _vector(pipeline, a), _vector(pipeline, b)
    to_a = [float(_vector(pipeline, f) @ va) for f in frames]
    to_b = [float(_vector(pipeline, f) @ vb) for f in frames]
    assert to_a[0] >= THRESHOLD and to_b[-1] >= THRESHOLD, (to_a, to_b)
    assert to_a[0] > to_b[0] and to_b[-1] > to_a[-1]
    assert all(later <= earlier + 0.05 for earlier, later in zip(to_a, to_a[1:])), to_a
    assert to_a[0] - to_a[-1] > 0.3, to_a

    import cv2

    gif = morph.write(frames, tmp_path / "m.gif")
    with Image.open(gif) as picture:
        assert picture.n_frames == 2 * len(frames) - 2  # there and back
        held, off = [], []
        for i, frame in enumerate(frames):
            picture.seek(i)
            held.append(picture.info["duration"])
            shown = np.asarray(picture.convert("RGB"), dtype=np.float32)
            # a 7-px blur evens out dithering's grain, not a palette's contour bands
            off.append(float(np.abs(cv2.blur(shown, (7, 7)) - cv2.blur(frame.astype(np.float32), (7, 7))).mean()))
    assert held[0] == held[-1] == morph.HOLD_MS > held[1], held  # each face rests, then the next
    assert max(off) < 1.0, off

    video = cv2.VideoCapture(str(morph.write(frames, tmp_path / "m.mp4")))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == len(frames)
    ok, first = video.read()
    video.release()
    assert ok and first.shape == (256, 256, 3)
    with Image.open(morph.write(frames, tmp_path / "m.png")) as strip:
        assert strip.size == (256 * len(frames), 256)
    with pytest.raises(ConfigError, match=r"\.gif, \.mp4 or \.png"):
        morph.write(frames, tmp_path / "m.webp")
    with pytest.raises(ValueError, match="landmarks"):  # a caller's bug, not an option
        morph.frames((a, pa), (b, pb[:60]), 5)


# ---- transforms ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def aging(faces, marks):
    """UTKFace (utkface-dev): the 60+ faces' average (toward), the average of the 20-39
    faces that are not test photos (away: the photos' own band), and 10 test photos aged
    20-39 per group of the race column (only to measure per group). Ten, not three: one
    photo's rise ranges from -8 to +53 years, so a mean of three moved by ~6 years with the
    CPU's floating-point kernels (AMD EPYC: every group >= 10; Xeon with AVX-512, 2026-12-05:
    'white' 8.0); a mean of ten is 13.9-24.7 years in every group on that Xeon."""
    folder = faces / "utkface-dev"
    rows = _rows(folder / "MANIFEST.tsv")
    young = [r for r in rows if 20 <= int(r["age"]) < 40]
    tests = [r for race in RACES for r in [r for r in young if r["race"] == race][:10]]
    toward = average.average(_faces(marks, [folder / r["path"] for r in rows if int(r["age"]) >= 60]), 256)
    away = average.average(_faces(marks, [folder / r["path"] for r in young if r not in tests]), 256)
    photos = []
    for row in tests:
        rgb = _load(folder / row["path"])
        box, points = marks(rgb)
        photos.append((row["race"], rgb, box, points))
    return toward, away, photos


def test_a_transform_toward_the_old_ages_the_face_and_keeps_the_person_and_their_skin_tone(
        aging, marks, pipeline, analysis_weights):
    """Toward 60+ away from the photo's own band (strength 1): the estimated age rises by
    >= 10 years on average, overall and in every group; the result is above the look-alike
    floor for >= 80 % of photos; the cheeks' mean colour moves by <= ΔE 10 on average in
    every group, and its hue and saturation (a*, b*: the complexion; lightness may change,
    aged cheeks are hollower) by <= 3 on average in every group and <= 10 for every photo
    (typically 1-2; colour added in RGB turns a dark face red, far beyond either)."""
    from lookalike.analysis import AnalyzerName, build

    analyzer = build(AnalyzerName.offline)
    toward, away, photos = aging
    rises: dict[str, list[float]] = {}
    above_floor = 0
    shifts: dict[str, list[float]] = {}
    tints: dict[str, list[float]] = {}
    for race, rgb, box, points in photos:
        out = transform.transform(rgb, points, toward, away, 1.0)
        _not_blank(out)
        assert out.shape == rgb.shape
        before = analyzer.analyze(rgb, [box])[0].age
        after = analyzer.analyze(out, [box])[0].age
        rises.setdefault(race, []).append(after - before)
        above_floor += float(_vector(pipeline, out) @ _vector(pipeline, rgb)) >= FLOOR
        after_points = marks(out)[1]
        cheeks_before = colour.mean_lab(rgb, cheek_masks(points, rgb.shape))
        cheeks_after = colour.mean_lab(out, cheek_masks(after_points, out.shape))
        shifts.setdefault(race, []).append(colour.delta_e(cheeks_before, cheeks_after))
        tints.setdefault(race, []).append(colour.delta_e(cheeks_before[1:], cheeks_after[1:]))
    every = [r for values in rises.values() for r in values]
    assert np.mean(every) >= 10, rises
    for race, values in rises.items():
        assert np.mean(values) >= 10, (race, values)
    assert above_floor / len(photos) >= 0.8
    for race, values in shifts.items():
        assert np.mean(values) <= 10, (race, values)
    for race, values in tints.items():
        assert np.mean(values) <= 3 and max(values) <= 10, (race, values)


def test_a_transform_is_pasted_back_without_a_seam(faces, aging, marks):
    """A photo with room round the face: outside the ring of the warp nothing changes (at
    most a level of resampling), inside the face does; so there is no edge to see."""
    import cv2

    toward, away, _ = aging
    rgb = _load(faces / "celeb" / "deepface" / "deepface_id01" / "img1.jpg", 640)
    points = marks(rgb)[1]
    out = transform.transform(rgb, points, toward, away, 1.0)
    far = np.ones(rgb.shape[:2], dtype=np.uint8)
    cv2.fillConvexPoly(far, np.rint(geometry.ring(points, transform.RING_SCALE)).astype(np.int32), 0)
    assert far.mean() > 0.3, "the test needs a photo with room round the face"
    change = np.abs(out.astype(int) - rgb.astype(int))
    assert change[far.astype(bool)].max() <= 2, change[far.astype(bool)].max()
    face = geometry.face_mask(points, (rgb.shape[1], rgb.shape[0]), 0) > 0
    assert change[face].mean() > 3, "the face did not change"


def test_a_transform_refuses_what_it_cannot_do(aging):
    toward, away, photos = aging
    _, rgb, _, points = photos[0]
    with pytest.raises(ValueError, match="landmark"):
        transform.transform(rgb, points[:60], toward, away)
    with pytest.raises(ConfigError, match="strength"):
        transform.transform(rgb, points, toward, away, 9.0)
    with pytest.raises(ValueError, match="RGB uint8"):
        transform.transform(rgb[:, :, 0], points, toward, away)
    with pytest.raises(ValueError, match="no faces"):
        average.average([], 128)


# ---- appearance model ------------------------------------------------------------------------

def test_the_appearance_model_draws_faces_along_its_components(faces, marks):
    paths = sorted((faces / "utkface-dev" / "images").glob("*.jpg"))[::10]
    found = _faces(marks, paths)
    model = appearance.fit(found, components=4, size=128)
    assert model.count == len(found) and len(model.sd) == 4
    assert (np.diff(model.shares) <= 1e-6).all() and 0 < model.shares.sum() <= 1
    for component in range(4):
        low, mid, high = (appearance.draw(model, component, s) for s in (-2.0, 0.0, 2.0))
        for picture in (low, mid, high):
            _not_blank(picture)
            assert picture.shape == (128, 128, 3)
        step = np.abs(high.astype(int) - low.astype(int)).mean()
        assert step > 1.0, f"component {component} draws the same face at -2 and +2 sd"
    with pytest.raises(ConfigError, match="component"):
        appearance.draw(model, 4, 1.0)

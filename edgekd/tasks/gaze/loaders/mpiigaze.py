"""MPIIGaze, normalized eye images (Zhang et al., "Appearance-Based Gaze Estimation in the Wild", CVPR 2015).

On-disk layout (as distributed): ``MPIIGaze/Data/Normalized/pNN/dayMM.mat``, MATLAB files with a struct
``data`` holding ``right`` and ``left``, each with ``image`` [N, 36, 60] uint8 (grayscale, histogram
equalised, in the normalized camera space), ``gaze`` [N, 3] (unit gaze vector, normalized camera frame)
and ``pose`` [N, 3]; plus ``filenames``. Read with ``scipy.io.loadmat``.

Convention: MPIIGaze's gaze vector is already edgekd's frame, so yaw/pitch come from
:func:`convention.from_camera_vector`. Left eyes are mirrored into right eyes (image flipped
left-right, gaze x negated, i.e. yaw negated) as Zhang et al. do, so one model serves both eyes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np

from edgekd.errors import ConfigError
from edgekd.tasks.gaze.loaders._common import pack, require_dir, resize
from edgekd.tasks.gaze.loaders.convention import from_camera_vector
from edgekd.tasks.gaze.synth import GazeArrays


def _field(obj: object, name: str, path: Path) -> np.ndarray:
    try:
        return np.asarray(getattr(obj, name))
    except AttributeError:
        raise ConfigError(f"{path}: no field {name!r} in the MPIIGaze struct",
                          hint="expected data.right/left.{image,gaze,pose} (MPIIGaze Data/Normalized)") from None


def load_mpiigaze(root: str | Path, *, participants: list[int] | None = None, eyes: Literal["right", "left", "both"]
                  = "both", size: tuple[int, int] | None = None) -> GazeArrays:
    """Load ``root`` (the MPIIGaze folder, or its Data/Normalized) into GazeArrays; wearer = participant number."""
    import scipy.io

    if eyes not in ("right", "left", "both"):
        raise ConfigError(f"eyes={eyes!r}: allowed are 'right', 'left', 'both'")
    base = Path(root)
    if (base / "Data" / "Normalized").is_dir():
        base = base / "Data" / "Normalized"
    require_dir(base, "MPIIGaze root", "give the MPIIGaze folder (holding Data/Normalized/pNN/dayMM.mat)")
    people = sorted(p for p in base.iterdir() if p.is_dir() and re.fullmatch(r"p\d+", p.name))
    if participants is not None:
        people = [p for p in people if int(p.name[1:]) in participants]
    images, gaze, wearer = [], [], []
    for person in people:
        pid = int(person.name[1:])
        for mat in sorted(person.glob("day*.mat")):
            try:
                data = scipy.io.loadmat(str(mat), squeeze_me=False, struct_as_record=False)["data"][0, 0]
            except (KeyError, ValueError, OSError, NotImplementedError) as exc:
                raise ConfigError(f"{mat}: not an MPIIGaze normalized .mat ({exc})") from None
            for eye in (("right", "left") if eyes == "both" else (eyes,)):
                e = _field(data, eye, mat)[0, 0]
                img = _field(e, "image", mat)
                vec = _field(e, "gaze", mat).reshape(-1, 3).astype(np.float64)
                if img.ndim == 2:
                    img = img[None]
                if len(img) != len(vec):
                    raise ConfigError(f"{mat}: {eye} has {len(img)} images but {len(vec)} gaze vectors")
                if eye == "left":  # mirror into a right eye: flip the image, negate gaze x
                    img = img[:, :, ::-1]
                    vec = vec * np.array([-1.0, 1.0, 1.0])
                ang = from_camera_vector(vec)
                for i in range(len(img)):
                    images.append(resize(np.ascontiguousarray(img[i]).astype(np.uint8), size))
                gaze.append(ang)
                wearer.extend([pid] * len(img))
    return pack(images, np.concatenate(gaze) if gaze else np.zeros((0, 2)), wearer, f"MPIIGaze {base}")

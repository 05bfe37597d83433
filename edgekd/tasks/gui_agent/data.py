"""Arrays of a GUI-agent split (rendered screens, or a real dataset read by :mod:`loaders`) and the
torch Dataset over them.

Items: ``image`` [3, S, S] float32 in [0, 1]; ``tokens`` [L] int64 (the instruction);
``target`` [3] int64, the label tokens [action, x-bin, y-bin] with IGNORE where there is no
label (unlabelled transfer screens: all three; BACK: the coordinates); ``truth`` [3] int64,
the true tokens even of unlabelled screens (for analysis only; no loss reads it);
``box`` [4] float32 target box (x0, y0, x1, y1) in model pixels; ``target_type`` int64
(0 text, 1 icon, 2 none); ``action`` int64; ``labelled`` float32 (1 = carries a label).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from edgekd.tasks.gui_agent import render
from edgekd.tasks.gui_agent import tokens as T


@dataclass
class GuiArrays:
    images: np.ndarray  # uint8 [N, 3, S, S]
    tokens: np.ndarray  # int64 [N, L]
    truth: np.ndarray  # int64 [N, 3]
    boxes: np.ndarray  # float32 [N, 4], model pixels
    target_type: np.ndarray  # int64 [N]
    labelled: np.ndarray  # bool [N]
    instructions: list[str]

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, mask: np.ndarray) -> GuiArrays:
        idx = np.flatnonzero(mask)
        return GuiArrays(self.images[idx], self.tokens[idx], self.truth[idx], self.boxes[idx],
                         self.target_type[idx], self.labelled[idx], [self.instructions[i] for i in idx])


def to_model_image(img: object, size: int) -> np.ndarray:
    """PIL image -> uint8 [3, size, size] (area-averaged downsampling keeps thin strokes)."""
    from PIL import Image

    im = img.convert("RGB")  # type: ignore[attr-defined]
    if im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BOX if min(im.size) >= size else Image.Resampling.BILINEAR)
    return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()


def generate(n: int, seed: int, stream: int, *, image_size: int, render_size: int, n_bins: int, max_tokens: int,
             cluttered: bool, paraphrase_mask: np.ndarray | None, labelled_mask: np.ndarray | None,
             n_elements: tuple[int, int], back_fraction: float) -> GuiArrays:
    """Render ``n`` screens from the seeded stream ``(seed, stream)``; screen i is paraphrased where
    ``paraphrase_mask[i]`` and labelled where ``labelled_mask[i]`` (default: all labelled, none
    paraphrased)."""
    rng = np.random.default_rng([seed, stream])
    scale = image_size / render_size
    images = np.empty((n, 3, image_size, image_size), dtype=np.uint8)
    toks = np.empty((n, max_tokens), dtype=np.int64)
    truth = np.empty((n, 3), dtype=np.int64)
    boxes = np.zeros((n, 4), dtype=np.float32)
    ttype = np.empty(n, dtype=np.int64)
    texts: list[str] = []
    for i in range(n):
        para = bool(paraphrase_mask[i]) if paraphrase_mask is not None else False
        s = render.make_sample(rng, render_size, cluttered=cluttered, paraphrase=para, n_elements=n_elements,
                               back_fraction=back_fraction)
        images[i] = to_model_image(s.image, image_size)
        toks[i] = T.tokenize(s.instruction, max_tokens)
        texts.append(s.instruction)
        if s.target is None:
            truth[i] = T.encode_target(s.action, None, image_size, n_bins)
            ttype[i] = render.NONE
        else:
            b = np.asarray(s.target.box, dtype=np.float32) * scale
            boxes[i] = b
            truth[i] = T.encode_target(s.action, ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2), image_size, n_bins)
            ttype[i] = s.target.target_type
    labelled = np.ones(n, dtype=bool) if labelled_mask is None else np.asarray(labelled_mask, dtype=bool)
    return GuiArrays(images, toks, truth, boxes, ttype, labelled, texts)


class GuiDataset(Dataset):  # type: ignore[type-arg]
    """An in-memory split; items are dicts of tensors (module docstring)."""

    def __init__(self, arrays: GuiArrays) -> None:
        self.arrays = arrays
        self._images = torch.from_numpy(arrays.images)
        self._tokens = torch.from_numpy(arrays.tokens)
        self._truth = torch.from_numpy(arrays.truth)
        target = arrays.truth.copy()
        target[~arrays.labelled] = T.IGNORE
        self._target = torch.from_numpy(target)
        self._boxes = torch.from_numpy(arrays.boxes)
        self._ttype = torch.from_numpy(arrays.target_type)
        self._labelled = torch.from_numpy(arrays.labelled.astype(np.float32))

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self._images[i].float() / 255.0, "tokens": self._tokens[i], "target": self._target[i],
                "truth": self._truth[i], "box": self._boxes[i], "target_type": self._ttype[i],
                "action": self._truth[i, 0], "labelled": self._labelled[i]}

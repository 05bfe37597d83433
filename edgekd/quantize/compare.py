"""How far a quantized model's outputs are from FP32: SQNR per output, and for maps the agreement.

SQNR (signal-to-quantization-noise ratio) in dB, summed over every compared batch:

    SQNR = 10 * log10( sum(ref^2) / sum((ref - q)^2) )

(about 6.02 dB per bit for a well-scaled uniform quantizer, so ~40-50 dB is typical of a
good INT8 model; below ~20 dB the outputs are visibly different). For probability maps
(rank >= 3, values in [0, 1], like a text detection map) the agreement is the IoU of the
two maps thresholded at ``threshold``: ``|A & B| / |A | B|`` (1.0 when both are empty).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

PredictFn = Callable[[Mapping[str, np.ndarray]], Sequence[np.ndarray]]


@dataclass
class OutputAgreement:
    name: str
    sqnr_db: float
    max_abs_diff: float
    map_iou: float | None = None  # only for probability maps
    threshold: float | None = None


def sqnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    """10 log10(|ref|^2 / |ref - test|^2); +inf when identical."""
    ref64, test64 = np.asarray(ref, np.float64), np.asarray(test, np.float64)
    noise = float(np.sum((ref64 - test64) ** 2))
    signal = float(np.sum(ref64**2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def map_iou(ref: np.ndarray, test: np.ndarray, threshold: float = 0.5) -> float:
    a, b = np.asarray(ref) > threshold, np.asarray(test) > threshold
    union = int(np.logical_or(a, b).sum())
    return 1.0 if union == 0 else int(np.logical_and(a, b).sum()) / union


def is_probability_map(a: np.ndarray) -> bool:
    return a.ndim >= 3 and a.size > 0 and np.issubdtype(a.dtype, np.floating) and \
        float(a.min()) >= 0.0 and float(a.max()) <= 1.0


def compare_outputs(reference: PredictFn, candidate: PredictFn, feeds: Iterable[Mapping[str, np.ndarray]],
                    names: Sequence[str], *, threshold: float = 0.5) -> list[OutputAgreement]:
    """Run both on every feed; pool the statistics over all feeds, per output."""
    sig = [0.0] * len(names)
    noise = [0.0] * len(names)
    max_abs = [0.0] * len(names)
    inter = [0] * len(names)
    union = [0] * len(names)
    is_map = [True] * len(names)
    seen = False
    for feed in feeds:
        seen = True
        r_out, c_out = reference(feed), candidate(feed)
        for i, (r, c) in enumerate(zip(r_out, c_out, strict=True)):
            r64, c64 = np.asarray(r, np.float64), np.asarray(c, np.float64)
            sig[i] += float(np.sum(r64**2))
            noise[i] += float(np.sum((r64 - c64) ** 2))
            max_abs[i] = max(max_abs[i], float(np.max(np.abs(r64 - c64))) if r64.size else 0.0)
            is_map[i] = is_map[i] and is_probability_map(np.asarray(r))
            a, b = np.asarray(r) > threshold, np.asarray(c) > threshold
            inter[i] += int(np.logical_and(a, b).sum())
            union[i] += int(np.logical_or(a, b).sum())
    if not seen:
        raise ValueError("compare_outputs needs at least one feed")
    out = []
    for i, name in enumerate(names):
        s = math.inf if noise[i] == 0 else (-math.inf if sig[i] == 0 else 10 * math.log10(sig[i] / noise[i]))
        iou = (1.0 if union[i] == 0 else inter[i] / union[i]) if is_map[i] else None
        out.append(OutputAgreement(name, s, max_abs[i], iou, threshold if is_map[i] else None))
    return out


def format_agreement(rows: Sequence[OutputAgreement]) -> list[str]:
    lines = []
    for r in rows:
        line = f"{r.name}: SQNR {r.sqnr_db:.1f} dB, max |diff| {r.max_abs_diff:.3g}"
        if r.map_iou is not None:
            line += f", map IoU@{r.threshold:g} {r.map_iou:.3f}"
        lines.append(line)
    return lines

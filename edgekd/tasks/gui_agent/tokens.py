"""Output tokens [action, x-bin, y-bin] and the word-level instruction tokenizer.

The output is a 3-token sequence, so the sequence-distillation losses (token KD, PPL-weighted
CE, BiLD/DBiLD) apply as they do to a VLM's answer tokens. Each position has its own
vocabulary of ``V = max(n_actions, n_bins)`` entries: position 0 uses the first 4 (CLICK,
TYPE, TOGGLE, BACK), positions 1 and 2 the n_bins coordinate bins. A BACK answer has no
click point: its coordinate targets are ``IGNORE``.

The word vocabulary is closed (every word the instruction templates, labels, paraphrases
and typed values can produce); words outside it (real datasets) map to UNK.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from edgekd.errors import ConfigError

ACTIONS: tuple[str, ...] = ("CLICK", "TYPE", "TOGGLE", "BACK")
CLICK, TYPE, TOGGLE, BACK = range(4)
IGNORE = -100  # target id excluded from CE / perplexity (torch's default ignore_index)
PAD, UNK = 0, 1

# Canonical label -> its paraphrase. Screens always show the canonical word; the paraphrase
# split (and the unlabelled transfer screens) say the synonym instead.
TEXT_LABELS: dict[str, str] = {
    "settings": "preferences", "delete": "remove", "search": "find", "home": "main", "profile": "bio",
    "messages": "inbox", "save": "store", "cancel": "abort", "share": "send", "edit": "modify",
    "help": "support", "login": "signin", "next": "continue", "download": "fetch", "music": "songs",
    "photos": "pictures", "calendar": "schedule", "contacts": "people", "email": "mail",
    "display": "screen", "privacy": "secrecy", "account": "user", "camera": "snapshot", "news": "headlines",
}
FIELD_LABELS: dict[str, str] = {
    "name": "fullname", "password": "passcode", "address": "location", "phone": "mobile", "city": "town",
    "comment": "remark", "username": "handle", "query": "keywords",
}
TOGGLE_LABELS: dict[str, str] = {
    "wifi": "wireless", "bluetooth": "pairing", "airplane": "flight", "sound": "audio", "vibrate": "buzz",
    "sync": "backup", "gps": "positioning", "autoplay": "autostart",
}
ICONS: dict[str, str] = {  # icon kind -> paraphrase of its name in instructions
    "gear": "cog", "trash": "bin", "magnifier": "loupe", "house": "dwelling", "heart": "love", "star": "favorite",
    "plus": "add", "cross": "close", "bell": "alarm", "menu": "hamburger",
}
VALUES: tuple[str, ...] = ("hello", "alice", "bob", "paris", "london", "42", "1234", "coffee", "pizza", "tomorrow")

# Templates: canonical (train / test / clutter) and paraphrased (held out from labels).
TEMPLATES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "click_text": (("click {l}", "tap {l}", "open {l}"), ("press {l}", "select {l}", "choose {l}")),
    "click_icon": (("click the {l} icon", "tap the {l} icon"), ("press the {l} symbol", "select the {l} glyph")),
    "type": (("type {v} in the {l} field", "type {v} in {l}"), ("enter {v} into the {l} box",
                                                                 "write {v} into {l}")),
    "toggle": (("toggle {l}", "switch {l}"), ("flip {l}", "turn {l}")),
    "back": (("go back", "back"), ("navigate backwards", "previous page")),
}
# Verb / filler synonyms the teacher's lexicon knows (canonical -> paraphrase words).
FUNCTION_SYNONYMS: dict[str, tuple[str, ...]] = {
    "click": ("tap", "open", "press", "select", "choose"), "icon": ("symbol", "glyph"),
    "type": ("enter", "write"), "in": ("into",), "field": ("box",), "toggle": ("flip",), "switch": ("turn",),
    "go": ("navigate", "previous"), "back": ("backwards", "page"),
}


def synonym_clusters() -> list[tuple[str, ...]]:
    """Groups of words with one meaning (canonical first): what a pretrained encoder would know."""
    clusters: list[tuple[str, ...]] = []
    for table in (TEXT_LABELS, FIELD_LABELS, TOGGLE_LABELS, ICONS):
        clusters += [(k, v) for k, v in table.items()]
    clusters += [(k, *v) for k, v in FUNCTION_SYNONYMS.items()]
    return clusters


def _all_words() -> list[str]:
    words: list[str] = []
    for table in (TEXT_LABELS, FIELD_LABELS, TOGGLE_LABELS, ICONS):
        for k, v in table.items():
            words += [k, v]
    words += list(VALUES)
    for canon, para in TEMPLATES.values():
        for tpl in (*canon, *para):
            words += [w for w in tpl.split() if not w.startswith("{")]
    for k, syn in FUNCTION_SYNONYMS.items():
        words += [k, *syn]
    return sorted(set(words))


WORDS: tuple[str, ...] = ("<pad>", "<unk>", *_all_words())
WORD_ID: dict[str, int] = {w: i for i, w in enumerate(WORDS)}
_SPLIT = re.compile(r"[a-z0-9]+")


def tokenize(text: str, max_len: int) -> np.ndarray:
    """Lower-cased alphanumeric words -> ids [max_len] (UNK for unknown words, PAD after the end,
    cut at max_len)."""
    ids = [WORD_ID.get(w, UNK) for w in _SPLIT.findall(text.lower())][:max_len]
    out = np.full(max_len, PAD, dtype=np.int64)
    out[: len(ids)] = ids
    return out


def detokenize(ids: Sequence[int]) -> str:
    return " ".join(WORDS[int(i)] for i in ids if int(i) != PAD)


def vocab_size(n_bins: int) -> int:
    """Per-position output vocabulary size."""
    return max(len(ACTIONS), n_bins)


def point_to_bins(x: float, y: float, size: float, n_bins: int) -> tuple[int, int]:
    """Pixel point (in a square image of side ``size``) -> (x-bin, y-bin)."""
    bx = int(np.clip(np.floor(x / size * n_bins), 0, n_bins - 1))
    by = int(np.clip(np.floor(y / size * n_bins), 0, n_bins - 1))
    return bx, by


def bins_to_point(bx: np.ndarray, by: np.ndarray, size: float, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin ids -> the pixel point at the bin centre."""
    w = size / n_bins
    return (np.asarray(bx) + 0.5) * w, (np.asarray(by) + 0.5) * w


def encode_target(action: int, point: tuple[float, float] | None, size: float, n_bins: int) -> np.ndarray:
    """[action, x-bin, y-bin]; BACK (no point) gets IGNORE coordinates."""
    if not 0 <= action < len(ACTIONS):
        raise ConfigError(f"action id {action}: allowed are 0..{len(ACTIONS) - 1} ({', '.join(ACTIONS)})")
    if action == BACK or point is None:
        return np.array([action, IGNORE, IGNORE], dtype=np.int64)
    bx, by = point_to_bins(point[0], point[1], size, n_bins)
    return np.array([action, bx, by], dtype=np.int64)


def decode_logits(logits: np.ndarray) -> np.ndarray:
    """[B, 3, V] logits -> [B, 3] token ids (the action arg-max over the 4 action entries only)."""
    z = np.asarray(logits)
    if z.ndim != 3 or z.shape[1] != 3 or z.shape[2] < len(ACTIONS):
        raise ConfigError(f"gui_agent model output has shape {tuple(z.shape)}; expected [batch, 3, V>=4] "
                          "(action, x-bin, y-bin logits)")
    return np.stack([z[:, 0, : len(ACTIONS)].argmax(-1), z[:, 1].argmax(-1), z[:, 2].argmax(-1)], axis=1)

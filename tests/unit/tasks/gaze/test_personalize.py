"""5-shot personalisation: only last-stage adapters train, a wearer bias is learnt, labelled folders, checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgekd.errors import ConfigError
from edgekd.tasks.gaze import models
from edgekd.tasks.gaze.personalize import (
    PersonalizeConfig,
    load_checkpoint,
    load_support_folder,
    model_from_state,
    personalize,
    read_labels,
)


def _tiny(adapters: bool = True) -> models.GazeNet:
    torch.manual_seed(0)
    return models.GazeNet((8, 8, 16, 16), (1, 1, 2, 1), kernel_size=3, stem_stride=4, adapters=adapters).eval()


def test_only_last_stage_adapters_change_and_a_bias_is_learnt() -> None:
    net = _tiny()
    x = torch.rand(5, 1, 32, 48)
    with torch.no_grad():
        target = net(x) + torch.tensor([5.0, 1.5])  # a kappa-like constant offset for this wearer
    before = {k: v.clone() for k, v in net.state_dict().items()}
    res = personalize(net, x, target, PersonalizeConfig(steps=60, lr=2e-2, anchor=0.0, jitter=0.0))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # input model untouched
    changed = {k for k, v in res.model.state_dict().items() if not torch.equal(before[k], v)}
    assert changed and all(k.startswith("stages.3.") and ".adapter." in k for k in changed)
    assert res.trained_parameters == sum(p.numel() for p in models.adapter_parameters(net, (3,)))
    assert res.support_error_before_deg == pytest.approx(np.rad2deg(np.arccos(
        np.cos(np.deg2rad(5.0)) * np.cos(np.deg2rad(1.5)))), abs=0.3)
    assert res.support_error_after_deg < 0.5 * res.support_error_before_deg
    assert not any(p.requires_grad for p in res.model.parameters())


def test_personalize_rejects_bad_input() -> None:
    with pytest.raises(ConfigError, match="no adapters"):
        personalize(_tiny(adapters=False), torch.rand(2, 1, 32, 48), torch.zeros(2, 2))
    with pytest.raises(ConfigError, match="do not fit"):
        personalize(_tiny(), torch.rand(2, 1, 32, 48), torch.zeros(3, 2))
    with pytest.raises(ConfigError, match="stages=\\[5\\]"):
        personalize(_tiny(), torch.rand(2, 1, 32, 48), torch.zeros(2, 2), PersonalizeConfig(stages=(5,)))


def _write_folder(root: Path, n: int = 5, size: tuple[int, int] = (32, 48)) -> tuple[Path, Path]:
    from PIL import Image

    d = root / "imgs"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = ["file,yaw_deg,pitch_deg"]
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, size, dtype=np.uint8)).save(d / f"e{i}.png")
        rows.append(f"e{i}.png,{i - 2.0},{0.5 * i}")
    labels = root / "labels.csv"
    labels.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return d, labels


def test_support_folder_loads_and_resizes(tmp_path: Path) -> None:
    d, labels = _write_folder(tmp_path, size=(40, 60))
    images, gaze, files, notes = load_support_folder(d, labels, (32, 48))
    assert images.shape == (5, 1, 32, 48) and images.dtype == np.uint8
    assert files == [f"e{i}.png" for i in range(5)]
    np.testing.assert_allclose(gaze[:, 0], [-2, -1, 0, 1, 2]) and np.testing.assert_allclose(gaze[:, 1],
                                                                                             [0, .5, 1, 1.5, 2])
    assert len(notes) == 5 and "resized from 60x40 to 48x32" in notes[0]


@pytest.mark.parametrize("text, match", [
    ("name,yaw,pitch\na.png,1,2\n", "header is"),
    ("file,yaw_deg,pitch_deg\n", "no rows"),
    ("file,yaw_deg,pitch_deg\na.png,x,2\n", "not numbers"),
    ("file,yaw_deg,pitch_deg\na.png,1,2\na.png,1,2\n", "labelled twice"),
    ("file,yaw_deg,pitch_deg\na.png,120,2\n", "within \\+-90"),
])
def test_bad_label_files_name_the_problem(tmp_path: Path, text: str, match: str) -> None:
    f = tmp_path / "l.csv"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=match):
        read_labels(f)


def test_folder_and_labels_must_match(tmp_path: Path) -> None:
    d, labels = _write_folder(tmp_path)
    (d / "e0.png").unlink()
    with pytest.raises(ConfigError) as ei:
        load_support_folder(d, labels)
    assert "e0.png: labelled in labels.csv but not in the folder" in str(ei.value)
    with pytest.raises(ConfigError, match="is not a folder"):
        load_support_folder(tmp_path / "nope", labels)


def test_checkpoint_round_trip_from_safetensors(tmp_path: Path) -> None:
    from edgekd.weights import save_module_weights

    cfg = models.GazeModelConfig()
    student = models.build_student(cfg).eval()
    for m in student.modules():  # non-trivial adapters so a wrong rebuild would show
        if isinstance(m, models.Adapter):
            torch.nn.init.normal_(m.up.weight, std=0.05)
    path = save_module_weights(student, tmp_path / "s.safetensors")
    net, size, prov = load_checkpoint(path)
    assert size is None and prov["weights"] == str(path)
    assert net.dims == cfg.student_dims and net.depths == cfg.depths
    x = torch.rand(2, 1, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(net(x), student(x))
    with pytest.raises(ConfigError, match="not a gaze network"):
        model_from_state({"w": torch.zeros(2)})
    with pytest.raises(ConfigError, match="neither an edgekd run folder"):
        load_checkpoint(tmp_path / "missing.pt")

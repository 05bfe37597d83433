"""The teacher's learned segmenter: exact labels, the U-Net, BN folding, and a trained tiny
segmenter that finds the target on held-out scenes and still flies the teacher home."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgekd.errors import ConfigError
from edgekd.tasks.drone import closed_loop, sim
from edgekd.tasks.drone import segmenter as seg
from edgekd.tasks.drone.config import DroneTaskConfig
from edgekd.tasks.drone.models import param_count
from edgekd.tasks.drone.teacher import IBVSTeacher, classical_masks, controller_predict, fit_boxes

# A tiny segmenter (30k parameters, 48 px) trains in ~10-15 s on one loaded core; the recipe's
# default (1.96M, 96 px) is trained by benchmarks/drone_latency.py.
TINY_LEARNED = {"base_channels": 8, "depth": 3, "train_steps": 160, "batch_size": 8, "lr": 2e-3, "train_scenes": 4}


@pytest.fixture(scope="module")
def learned_cfg() -> DroneTaskConfig:
    # the conftest's tiny configuration (48 px, 2 scenes, short flights) with the learned segmenter
    return DroneTaskConfig(image_size=48, train_episodes=3, episode_steps=6, val_frames=12,
                           scene={"scenes": 2, "distractors": 3},
                           closed_loop={"timeout_s": 8.0, "hold_s": 0.5, "random_starts_val": 3,
                                        "random_starts_test": 0},
                           ibvs={"segmenter": "learned", "learned": TINY_LEARNED})


@pytest.fixture(scope="module")
def trained(learned_cfg: DroneTaskConfig) -> seg.UNet:
    torch.set_num_threads(1)
    return seg.trained_segmenter(learned_cfg)


def test_exact_labels_agree_with_the_rendered_colours() -> None:
    cfg = DroneTaskConfig(image_size=96, scene={"scenes": 3, "distractors": 0}, dynamics={"pixel_noise": 0.0})
    bank = sim.make_bank(cfg.scene, 0, 5)
    ids = np.arange(8) % bank.k
    states = sim.paper_starts(bank.target_yaw[ids], 1.0)
    img = sim.render(bank, sim.camera_from(cfg), states, ids)
    lab = seg.target_labels(cfg, bank, states, ids)
    target, front = classical_masks(img, median_filter=False)
    # only bilinear edge pixels may disagree: IoU ~0.9 at 96 px (a wrong frame or yaw sign gives ~0)
    assert seg.mask_iou(lab > 0, target).min() > 0.85
    assert seg.mask_iou(lab == seg.FRONT, front).min() > 0.6
    # front share of the target = front_fraction
    share = (lab == seg.FRONT).sum() / (lab > 0).sum()
    assert abs(share - cfg.scene.front_fraction) < 0.03


def test_unet_shapes_size_and_bn_folding() -> None:
    torch.manual_seed(0)
    net = seg.UNet(16, 5)
    assert 1.9e6 < param_count(net) < 2.0e6  # the size of a real onboard segmenter
    small = seg.UNet(4, 3)
    x = torch.rand(2, 3, 50, 45)  # not a multiple of 4: padded inside, cropped back
    assert small(x).shape == (2, 3, 50, 45)
    small.train()
    small(torch.rand(4, 3, 32, 32))  # move the BatchNorm statistics off their defaults
    small.eval()
    fused = seg.fuse_for_inference(small)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    with torch.no_grad():
        torch.testing.assert_close(fused(x), small(x), atol=1e-4, rtol=1e-4)


def test_trained_segmenter_finds_the_target_on_held_out_scenes(learned_cfg: DroneTaskConfig,
                                                               trained: seg.UNet) -> None:
    bank = sim.make_bank(learned_cfg.scene, 0, closed_loop.STREAM["test"])  # never seen in training
    img, lab = seg.random_views(learned_cfg, bank, 24, np.random.default_rng(123), aug=False)
    truth = lab.numpy()
    visible = (truth > 0).reshape(24, -1).sum(1) > 40  # the target mostly in view
    target, front = seg.LearnedSegmenter(trained)(img)
    iou = seg.mask_iou(target, truth > 0)[visible]
    assert visible.sum() >= 12
    assert iou.mean() > 0.8 and np.median(iou) > 0.8, iou
    # the front mark is found where the target is: it orients the box
    assert (front[visible].reshape(int(visible.sum()), -1).sum(1) >= 2).all()
    # and is memoised: the task builds its teacher several times
    assert seg.trained_segmenter(learned_cfg) is trained


def test_teacher_with_learned_segmenter_flies_home(learned_cfg: DroneTaskConfig, trained: seg.UNet) -> None:
    bank = sim.make_bank(learned_cfg.scene, 0, closed_loop.STREAM["val"])
    eps = closed_loop.make_episodes(learned_cfg, bank, "val", 0)
    teacher = IBVSTeacher(learned_cfg)
    assert teacher.segmenter is not None
    r = closed_loop.rollout(learned_cfg, bank, eps, controller_predict(teacher), seed=0)
    s = closed_loop.summarise(r, learned_cfg)
    assert s["success_rate"] == 1.0, s
    assert s["final_error_px"] < 1.25


def test_learned_masks_feed_the_same_box_fit(learned_cfg: DroneTaskConfig, trained: seg.UNet) -> None:
    cfg = learned_cfg.model_copy(update={"dynamics": learned_cfg.dynamics.model_copy(update={"pixel_noise": 0.0})})
    bank = sim.make_bank(cfg.scene, 0, 5)
    ids = np.arange(8) % bank.k
    states = sim.paper_starts(bank.target_yaw[ids], 0.6)
    img = sim.render(bank, sim.camera_from(cfg), states, ids)
    truth = sim.camera_from(cfg).to_pixels(sim.true_corners(cfg, bank, states, ids))
    det = fit_boxes(*seg.LearnedSegmenter(trained)(img), min_pixels=5)
    assert det.found.all()
    err = np.linalg.norm(det.corners_px - truth, axis=-1).mean(1)
    assert err.max() < 1.5, err  # pixels at 48 px; a wrong corner order would be ~10 px


def test_weights_round_trip_and_missing_file(learned_cfg: DroneTaskConfig, trained: seg.UNet,
                                             tmp_path: Path) -> None:
    from edgekd.weights import save_module_weights

    path = save_module_weights(trained, tmp_path / "seg.safetensors")
    lc = learned_cfg.ibvs.learned.model_copy(update={"weights": str(path)})
    cfg = learned_cfg.model_copy(update={"ibvs": learned_cfg.ibvs.model_copy(update={"learned": lc})})
    loaded = seg.trained_segmenter(cfg)
    x = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), trained(x))
    bad = cfg.model_copy(update={"ibvs": cfg.ibvs.model_copy(update={"learned": lc.model_copy(
        update={"weights": str(tmp_path / "nope.safetensors")})})})
    with pytest.raises(ConfigError, match="learned.weights"):
        seg.trained_segmenter(bad)


def test_recipe_keeps_the_classical_segmenter_and_rejects_unknown_ones() -> None:
    from edgekd.tasks import build_task
    from edgekd.tasks.recipe import load_recipe

    r = load_recipe("drone", preset="smoke")
    assert r.task.ibvs.segmenter == "classical"  # type: ignore[attr-defined]
    assert IBVSTeacher(build_task(r.task, r.seed).config).segmenter is None  # nothing to train
    with pytest.raises(ConfigError, match=r"task\.ibvs\.segmenter.*'classical' or 'learned'"):
        load_recipe("drone", overrides=["task.ibvs.segmenter=neural"])

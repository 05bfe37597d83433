"""FCMAE-style pre-training of the gaze teacher: masks, masked-pixel loss, no leak of hidden pixels, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekd.tasks.gaze import GazeTaskConfig, mae, models, synth
from edgekd.tasks.gaze.config import GazeMAEConfig
from edgekd.tasks.gaze.task import GazeTask


def _tiny() -> models.GazeNet:
    return models.GazeNet((8, 8, 16, 16), (1, 1, 1, 1), kernel_size=3, stem_stride=4)


def test_patch_mask_hides_exactly_the_ratio() -> None:
    gen = torch.Generator().manual_seed(0)
    m = mae.patch_mask(5, 32, 48, 8, 0.6, gen)
    assert m.shape == (5, 1, 32, 48)
    n = (32 // 8) * (48 // 8)
    per_image = m[:, 0, ::8, ::8].reshape(5, -1).sum(1)
    assert per_image.tolist() == [round(0.6 * n)] * 5
    # patches are whole: every 8x8 block is constant
    blocks = m[:, 0].reshape(5, 4, 8, 6, 8)
    assert torch.equal(blocks.amax(dim=(2, 4)), blocks.amin(dim=(2, 4)))


def test_masked_pixel_mse_golden() -> None:
    image = torch.zeros(1, 1, 2, 2)
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    # masked pixels: errors 1^2 and 4^2 -> (1 + 16) / 2
    assert float(mae.masked_pixel_mse(pred, image, mask)) == pytest.approx(8.5)


def test_hidden_pixels_do_not_reach_the_features() -> None:
    net = _tiny().eval()
    gen = torch.Generator().manual_seed(1)
    mask = mae.patch_mask(2, 32, 48, 8, 0.5, gen)
    a = torch.rand(2, 1, 32, 48)
    b = a * (1 - mask) + torch.rand(2, 1, 32, 48) * mask  # differs only under the mask
    with torch.no_grad():
        torch.testing.assert_close(mae.masked_features(net, a, mask), mae.masked_features(net, b, mask))
        c = a.clone()
        c[mask == 0] = 1 - c[mask == 0]  # a visible change must matter
        assert not torch.allclose(mae.masked_features(net, a, mask), mae.masked_features(net, c, mask))


def test_pretraining_lowers_the_loss_and_leaves_head_and_adapters() -> None:
    cfg = GazeTaskConfig(height=32, width=48)
    mcfg = GazeMAEConfig(enabled=True, images=96, wearers=6, epochs=4, batch_size=16, lr=3e-3)
    images = mae.unlabelled_images(cfg, mcfg, seed=0)
    assert images.shape == (96, 1, 32, 48) and images.dtype == np.uint8
    net = _tiny()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    res = mae.pretrain_mae(net, images, mcfg, seed=0)
    assert len(res.history) == 4 and res.history[-1] < 0.5 * res.history[0]
    after = net.state_dict()
    frozen = [k for k in before if k.startswith("head.") or ".adapter." in k]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen if "running" not in k
                          and "num_batches" not in k)
    assert not torch.equal(before["stages.2.0.pwconv1.weight"], after["stages.2.0.pwconv1.weight"])
    assert all(p.requires_grad for p in net.parameters())  # the freeze is undone
    assert res.decoder is not None
    err = mae.reconstruction_error(net, res.decoder, images[:16], mcfg)
    assert err < res.history[0]


def test_unlabelled_wearers_are_disjoint_from_labelled_splits() -> None:
    cfg = GazeTaskConfig(train_wearers=40, val_wearers=6, test_wearers=10)
    ids = synth.WEARER_BASE["unlabelled"] + np.arange(cfg.mae.wearers)
    labelled = np.concatenate([synth.split_wearers(cfg, s) for s in ("train", "val", "test")])
    assert not set(ids.tolist()) & set(labelled.tolist())


def test_task_hook_runs_only_when_enabled() -> None:
    small = dict(height=32, width=48, train_size=16, val_size=8, test_size=8, train_wearers=2, val_wearers=1,
                 test_wearers=1)
    off = GazeTask(GazeTaskConfig(**small), seed=0)
    t = _tiny()
    state = {k: v.clone() for k, v in t.state_dict().items()}
    assert off.pretrain_teacher(t) == {"mae": False}
    assert all(torch.equal(state[k], v) for k, v in t.state_dict().items())
    on = GazeTask(GazeTaskConfig(**small, mae=GazeMAEConfig(enabled=True, images=32, wearers=2, epochs=1,
                                                            batch_size=16)), seed=0)
    info = on.pretrain_teacher(t)
    assert info["mae"] is True and info["images"] == 32 and len(info["masked_pixel_mse"]) == 1
    assert not torch.equal(state["stages.0.0.dwconv.weight"], t.state_dict()["stages.0.0.dwconv.weight"])


def test_adapters_only_generalised_phase_freezes_the_pretrained_backbone() -> None:
    from edgekd.errors import ConfigError

    small = dict(height=32, width=48, train_size=16, val_size=8, test_size=8, train_wearers=2, val_wearers=1,
                 test_wearers=1)
    task = GazeTask(GazeTaskConfig(**small, mae=GazeMAEConfig(enabled=True, images=32, wearers=2, epochs=1,
                                                              batch_size=16, finetune="adapters")), seed=0)
    t = _tiny()
    info = task.pretrain_teacher(t)
    trainable = {n for n, p in t.named_parameters() if p.requires_grad}
    expected = {n for n in dict(t.named_parameters()) if ".adapter." in n or n.startswith("head.")}
    assert trainable == expected and trainable
    assert info["finetune"] == "adapters"
    assert info["trainable_params"] == sum(p.numel() for n, p in t.named_parameters() if n in expected)
    # no adapters: a clear error naming the setting
    with pytest.raises(ConfigError, match="task.mae.finetune=adapters"):
        models.train_only_adapters_and_head(models.GazeNet((8, 8, 16, 16), (1, 1, 1, 1), adapters=False))

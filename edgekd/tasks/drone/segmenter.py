"""The teacher pipeline's optional learned segmenter: a compact U-Net trained on the
simulator's exact target masks.

NSER-IBVS's teacher finds the target with a learned segmentation network before fitting the
box and running IBVS; that network is what makes the teacher pipeline about 11x slower than
the 1.7M-parameter student (20.69 ms vs 1.85 ms in the paper). The classical colour-threshold
segmenter of :mod:`edgekd.tasks.drone.teacher` is exact on this simulator but costs under a
millisecond, so it cannot stand in for the real teacher's cost; this module can.

Architecture (Ronneberger et al. 2015, "U-Net"): ``depth`` levels with ``c_l = base * 2^l``
channels; each level is two (conv 3x3 -> BatchNorm -> ReLU); 2x2 max-pool going down,
bilinear 2x upsampling + concatenation with the skip going up; a 1x1 conv to 3 classes
(0 background, 1 target body, 2 target front mark). At ``base=16, depth=5`` it has 1.93M
parameters, the size of a real onboard segmenter.

Training: cross-entropy ``-sum_p log softmax(z_p)[y_p]`` plus soft Dice on the two target
classes (the front mark is ~1-2% of the pixels) on views rendered at random poses over
scenes of the segmenter's own random stream, with the same photometric augmentation as the
student (brightness, saturation, salt-and-pepper) and the simulator's pixel noise. Labels come
from the scene geometry (pixel centre -> ground point -> target frame), so they are exact.
Trained weights are memoised per configuration for the process, or loaded from
``learned.weights``.
"""

from __future__ import annotations

import hashlib
import math
import threading

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgekd.errors import ConfigError
from edgekd.tasks.drone import sim
from edgekd.tasks.drone.augment import augment
from edgekd.tasks.drone.config import DroneTaskConfig

SEGMENTER_STREAM = 31  # random stream of the segmenter's scenes (train/val/test use others)
BACKGROUND, BODY, FRONT = 0, 1, 2

_LOCK = threading.Lock()
_TRAINED: dict[str, UNet] = {}


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """``forward(image [B,3,H,W] in [0,1]) -> logits [B,3,H,W]``; H and W any size (padded
    internally to a multiple of ``2^(depth-1)``)."""

    def __init__(self, base_channels: int = 16, depth: int = 5, classes: int = 3) -> None:
        super().__init__()
        ch = [base_channels * 2**i for i in range(depth)]
        self.stride = 2 ** (depth - 1)
        self.down = nn.ModuleList([_double_conv(3, ch[0])] + [_double_conv(ch[i - 1], ch[i]) for i in range(1, depth)])
        self.up = nn.ModuleList([_double_conv(ch[i + 1] + ch[i], ch[i]) for i in reversed(range(depth - 1))])
        self.head = nn.Conv2d(ch[0], classes, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        ph, pw = (-h) % self.stride, (-w) % self.stride
        x = F.pad(image, (0, pw, 0, ph), mode="replicate") if ph or pw else image
        skips = []
        for i, block in enumerate(self.down):
            x = block(F.max_pool2d(x, 2) if i else x)
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return self.head(x)[..., :h, :w]


def fuse_for_inference(net: UNet) -> nn.Module:
    """An eval-mode copy with every BatchNorm folded into its conv (as a deployed segmenter would
    run: ``w' = w gamma / sqrt(var + eps)``, ``b' = beta - mean gamma / sqrt(var + eps)``)."""
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    net = copy.deepcopy(net).eval()
    for block in list(net.down) + list(net.up):
        layers = list(block.children())
        fused: list[nn.Module] = []
        i = 0
        while i < len(layers):
            conv, bn = layers[i], layers[i + 1] if i + 1 < len(layers) else None
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                fused.append(fuse_conv_bn_eval(conv, bn))
                i += 2
            else:
                fused.append(layers[i])
                i += 1
        block._modules.clear()
        for j, m in enumerate(fused):
            block.add_module(str(j), m)
    return net


def target_labels(cfg: DroneTaskConfig, bank: sim.SceneBank, states: np.ndarray, scene_ids: np.ndarray) -> np.ndarray:
    """Exact per-pixel classes [N, H, W] int64 (0 background, 1 body, 2 front mark) of views
    rendered from ``states`` over ``scene_ids``: each pixel centre's ground point, expressed in
    its scene's target frame (a along the front, b to the left), is inside the rectangle
    |a| <= L/2, |b| <= W/2; the front mark is a >= L/2 - front_fraction L."""
    cam = sim.camera_from(cfg)
    s = cfg.scene
    states = np.asarray(states, dtype=np.float64).reshape(-1, 3)
    n, hw = len(states), cam.size
    rays = sim._pixel_rays(cam).reshape(1, -1, 2)
    g = sim.unproject(np.broadcast_to(rays, (n, hw * hw, 2)), states, cam.altitude)  # [N, HW, 2]
    ty = bank.target_yaw[np.asarray(scene_ids)][:, None]
    a = np.cos(ty) * g[..., 0] + np.sin(ty) * g[..., 1]
    b = -np.sin(ty) * g[..., 0] + np.cos(ty) * g[..., 1]
    inside = (np.abs(a) <= s.target_length_m / 2) & (np.abs(b) <= s.target_width_m / 2)
    front = inside & (a >= s.target_length_m / 2 - s.front_fraction * s.target_length_m)
    out = inside.astype(np.int64) + front.astype(np.int64)
    return out.reshape(n, hw, hw)


def random_views(cfg: DroneTaskConfig, bank: sim.SceneBank, n: int, rng: np.random.Generator,
                 generator: torch.Generator | None = None,
                 aug: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` rendered views [n, 3, H, W] and their labels [n, H, W]: offsets up to 1.6x the
    closed-loop start radius (the target partly out of view at the rim), any yaw."""
    ids = rng.integers(bank.k, size=n)
    r = 1.6 * cfg.closed_loop.start_radius_m * np.sqrt(rng.random(n))
    a = rng.uniform(-math.pi, math.pi, n)
    states = np.stack([r * np.cos(a), r * np.sin(a), rng.uniform(-math.pi, math.pi, n)], -1)
    img = sim.render(bank, sim.camera_from(cfg), states, ids, rng, cfg.dynamics.pixel_noise)
    if aug and cfg.augment:
        img = torch.stack([augment(im, cfg.salt_pepper, generator) if k % 2 else im for k, im in enumerate(img)])
    return img, torch.from_numpy(target_labels(cfg, bank, states, ids))


def segmenter_key(cfg: DroneTaskConfig) -> str:
    """What the trained weights depend on (render geometry, scenes, noise, training settings)."""
    sig = cfg.model_dump_json(include={"image_size": True, "scene": True, "augment": True, "salt_pepper": True,
                                       "dynamics": {"pixel_noise"}, "closed_loop": {"start_radius_m"},
                                       "ibvs": {"learned"}})
    return hashlib.sha256(sig.encode()).hexdigest()[:16]


def soft_dice_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over the foreground classes of ``1 - 2 sum(p y) / (sum p + sum y)`` (Milletari et al.
    2016, "V-Net"), over the whole batch. Why: the front mark covers ~1-2% of the pixels, and
    cross-entropy alone learns to never predict it; Dice weighs each class by its own size."""
    prob = logits.softmax(1)[:, 1:]
    onehot = F.one_hot(labels, logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].to(prob.dtype)
    inter = (prob * onehot).sum((0, 2, 3))
    denom = prob.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    return (1 - (2 * inter + 1.0) / (denom + 1.0)).mean()


def train_segmenter(cfg: DroneTaskConfig, *, progress: bool = False) -> UNet:
    """Train the U-Net of ``cfg.ibvs.learned`` (Adam, cosine learning rate, cross-entropy + Dice)."""
    lc = cfg.ibvs.learned
    scene = cfg.scene.model_copy(update={"scenes": lc.train_scenes})
    bank = sim.make_bank(scene, lc.seed, SEGMENTER_STREAM)
    rng = np.random.default_rng([lc.seed, SEGMENTER_STREAM])
    gen = torch.Generator().manual_seed(lc.seed)
    with torch.random.fork_rng():  # leave the caller's global RNG untouched
        torch.manual_seed(lc.seed)
        net = UNet(lc.base_channels, lc.depth)
    opt = torch.optim.Adam(net.parameters(), lr=lc.lr)
    net.train()
    for step in range(lc.train_steps):
        # cosine from lr to 5% of it: late steps refine the boundaries the box fit depends on
        lr = lc.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / max(1, lc.train_steps))))
        for group in opt.param_groups:
            group["lr"] = lr
        img, lab = random_views(cfg, bank, lc.batch_size, rng, gen)
        logits = net(img)
        loss = F.cross_entropy(logits, lab) + soft_dice_loss(logits, lab)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress and (step % 50 == 0 or step == lc.train_steps - 1):
            print(f"  segmenter step {step}: cross-entropy {float(loss.detach()):.4f}", flush=True)
    return net.eval()


def trained_segmenter(cfg: DroneTaskConfig) -> UNet:
    """The configuration's trained U-Net: loaded from ``learned.weights``, or trained once per
    process and memoised (the task builds its teacher several times)."""
    lc = cfg.ibvs.learned
    if lc.weights is not None:
        from pathlib import Path

        from edgekd.weights import load_module_weights

        path = Path(lc.weights)
        if not path.is_file():
            raise ConfigError(f"task.ibvs.learned.weights={lc.weights!r}: no such file",
                              hint="point it at a .safetensors file written by benchmarks/drone_latency.py "
                                   "--save-segmenter, or set it to null to train the segmenter")
        return load_module_weights(UNet(lc.base_channels, lc.depth), path).eval()  # type: ignore[return-value]
    key = segmenter_key(cfg)
    with _LOCK:
        if key not in _TRAINED:
            _TRAINED[key] = train_segmenter(cfg)
        return _TRAINED[key]


class LearnedSegmenter:
    """``segmenter(images [B,3,H,W]) -> (target mask, front mask)``, [B, H, W] bool numpy, the
    argmax classes of the BatchNorm-folded U-Net (target = body or front)."""

    def __init__(self, net: UNet) -> None:
        self.net = fuse_for_inference(net)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        cls = self.net(images.detach().float().cpu()).argmax(1).numpy()
        return cls != BACKGROUND, cls == FRONT


def mask_iou(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-image IoU [B] of boolean masks [B, H, W] (1 where both are empty)."""
    inter = (pred & truth).reshape(len(pred), -1).sum(1)
    union = (pred | truth).reshape(len(pred), -1).sum(1)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)

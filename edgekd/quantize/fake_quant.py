"""Quantization-aware distillation: the student trains with fake quantization against a
full-precision teacher (Jacob et al., "Quantization and Training of Neural Networks for
Efficient Integer-Arithmetic-Only Inference", CVPR 2018; with KD as in Mishra & Marr,
"Apprentice", ICLR 2018).

Choice of tooling, and why: each ``nn.Conv1d/2d/3d`` and ``nn.Linear`` is replaced in place
(same module path, so feature taps still resolve) by a subclass that fake-quantizes

- its input activation: per-tensor, unsigned 8-bit affine (quint8, 0..255; or signed symmetric
  qint8 with ``activation="int8"``, the layout TensorRT requires), and
- its weight: per-output-channel, signed 8-bit symmetric (qint8, zero point 0),
- its output activation: per-tensor quint8,

with torch's own ``torch.ao.quantization.FakeQuantize`` modules driven by moving-average
min/max observers (straight-through estimator gradients). This is exactly the layout the
runtime notes measured as fastest in ONNX Runtime (unsigned activations, signed per-channel
weights: every convolution fuses into QLinearConv). Exported with the TorchScript ONNX
exporter (``torch.onnx.export(..., dynamo=False, opset_version>=13)``), every FakeQuantize
becomes a QuantizeLinear/DequantizeLinear pair, and ONNX Runtime's graph optimizer fuses
``DQ -> Conv -> Q`` into QLinearConv and ``DQ -> MatMul/Gemm -> Q`` into QLinearMatMul/QGemm:
an INT8 model with the scales learnt in training, no calibration pass needed.
(NNCF would also work but is an optional extra; torch's modules are always there.)

Call :func:`freeze_qat` before export: it stops the observers so the scales are constants.
Options: ``prepare_qat(per_channel=False)`` gives one weight scale per tensor;
``weight_bits=B < 8`` trains B-bit weights (fake-quant ``s * clamp(round(w / s), -2^(B-1),
2^(B-1) - 1)``), which :func:`bake_low_bit_weights` carries exactly in an int8 QDQ graph.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.ao.quantization import (
    FakeQuantize,
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
)

_QUANTIZABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def activation_fake_quant(activation: str = "uint8") -> FakeQuantize:
    """Per-tensor activation fake-quant: ``uint8`` affine (0..255, what ONNX Runtime fuses best) or ``int8``
    symmetric (-128..127, zero point 0: the only Q/DQ TensorRT parses)."""
    if activation == "int8":
        return FakeQuantize(observer=MovingAverageMinMaxObserver, quant_min=-128, quant_max=127, dtype=torch.qint8,
                            qscheme=torch.per_tensor_symmetric, averaging_constant=0.01)
    if activation != "uint8":
        from edgekd.errors import ConfigError

        raise ConfigError(f"activation={activation!r}: allowed 'uint8', 'int8'",
                          hint="uint8 for ONNX Runtime / OpenVINO, int8 for TensorRT")
    return FakeQuantize(observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype=torch.quint8,
                        qscheme=torch.per_tensor_affine, averaging_constant=0.01)


def weight_fake_quant(per_channel: bool = True, bits: int = 8) -> FakeQuantize:
    """Signed symmetric weight fake-quant on ``bits`` bits (range -2^(b-1) .. 2^(b-1)-1)."""
    # Symmetric keeps zero point 0 (integer kernels require it of weights). The ONNX exporter
    # accepts only the full int8 range -128..127 for QuantizeLinear: fewer bits export through
    # bake_low_bit_weights.
    if not 2 <= bits <= 8:
        from edgekd.errors import ConfigError

        raise ConfigError(f"weight_bits={bits}: allowed 2..8", hint="use 8 for INT8 runtimes")
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if not per_channel:
        return FakeQuantize(observer=MovingAverageMinMaxObserver, quant_min=qmin, quant_max=qmax, dtype=torch.qint8,
                            qscheme=torch.per_tensor_symmetric, averaging_constant=0.01)
    return FakeQuantize(observer=MovingAveragePerChannelMinMaxObserver, quant_min=qmin, quant_max=qmax,
                        dtype=torch.qint8, qscheme=torch.per_channel_symmetric, ch_axis=0,
                        averaging_constant=0.01)


class _QATMixin:
    """Forward of a fake-quantized Conv/Linear: q_out(op(q_in(x), q_w(W), b))."""

    input_fake_quant: FakeQuantize
    weight_fake_quant: FakeQuantize
    output_fake_quant: FakeQuantize

    def _init_fq(self, per_channel: bool = True, weight_bits: int = 8, activation: str = "uint8") -> None:
        self.input_fake_quant = activation_fake_quant(activation)
        self.weight_fake_quant = weight_fake_quant(per_channel, weight_bits)
        self.output_fake_quant = activation_fake_quant(activation)

    def _op(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:  # pragma: no cover - per subclass
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight_fake_quant(self.weight)  # type: ignore[attr-defined]
        y = self._op(self.input_fake_quant(x), w)
        return self.output_fake_quant(y)


class QATLinear(_QATMixin, nn.Linear):
    def _op(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, w, self.bias)


class QATConv1d(_QATMixin, nn.Conv1d):
    def _op(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, w, self.bias)


class QATConv2d(_QATMixin, nn.Conv2d):
    def _op(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, w, self.bias)


class QATConv3d(_QATMixin, nn.Conv3d):
    def _op(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, w, self.bias)


_QAT_CLASS: dict[type[nn.Module], type[nn.Module]] = {
    nn.Linear: QATLinear, nn.Conv1d: QATConv1d, nn.Conv2d: QATConv2d, nn.Conv3d: QATConv3d}


def prepare_qat(model: nn.Module, *, per_channel: bool = True, weight_bits: int = 8,
                activation: str = "uint8") -> nn.Module:
    """Turn every Conv/Linear of ``model`` into its fake-quantized twin, in place (weights kept).

    Module paths are unchanged, so feature taps and state-dict prefixes still match; the new
    fake-quant buffers (scales, zero points, observer ranges) are saved in checkpoints.
    ``per_channel=False`` quantizes each weight tensor with one scale (for runtimes or
    comparisons that need per-tensor weights); activations are per-tensor either way.
    ``weight_bits < 8`` trains low-bit weights (export them with :func:`bake_low_bit_weights`).
    ``activation="int8"``: signed symmetric activations (zero point 0), which TensorRT requires.
    """
    weight_fake_quant(per_channel, weight_bits)  # validates weight_bits and activation before touching the model
    activation_fake_quant(activation)
    for _name, module in list(model.named_modules()):
        if type(module) in _QAT_CLASS:
            module.__class__ = _QAT_CLASS[type(module)]  # same parameters, new forward
            module._init_fq(per_channel, weight_bits, activation)  # type: ignore[operator]
            dev = module.weight.device  # type: ignore[union-attr]
            for sub in (module.input_fake_quant, module.weight_fake_quant, module.output_fake_quant):  # type: ignore[union-attr]
                sub.to(dev)
    return model


def is_qat(model: nn.Module) -> bool:
    return any(isinstance(m, _QATMixin) for m in model.modules())


def freeze_qat(model: nn.Module) -> nn.Module:
    """Stop every observer (scales become constants) and switch to eval mode, before export."""
    for m in model.modules():
        if isinstance(m, FakeQuantize):
            m.disable_observer()
            m.enable_fake_quant()
    return model.eval()


def has_low_bit_weights(model: nn.Module) -> bool:
    """Whether any fake-quantized weight of ``model`` uses fewer than 8 bits (export needs baking)."""
    return any(isinstance(m, _QATMixin) and (m.weight_fake_quant.quant_min, m.weight_fake_quant.quant_max)
               != (-128, 127) for m in model.modules())


def bake_low_bit_weights(model: nn.Module) -> int:
    """Make low-bit (< 8) fake-quantized weights exportable, exactly; returns how many modules changed.

    The quantized values ``s * k`` (``|k| <= 2^(b-1)``) are written into the float weights and
    the weight fake-quant is replaced by an int8 one with scale ``s / 2^(8-b)``: then
    ``k * 2^(8-b)`` lies in -128..127, so the int8 QDQ graph the TorchScript exporter writes
    computes exactly the b-bit model (ONNX Runtime runs it with its int8 kernels).
    """
    changed = 0
    for m in model.modules():
        if not isinstance(m, _QATMixin):
            continue
        fq = m.weight_fake_quant
        if fq.quant_min == -128 and fq.quant_max == 127:
            continue
        bits = (fq.quant_max - fq.quant_min + 1).bit_length() - 1
        per_channel = fq.qscheme in (torch.per_channel_symmetric, torch.per_channel_affine)
        weight: torch.Tensor = m.weight  # type: ignore[attr-defined,assignment]
        with torch.no_grad():
            fq.disable_observer()
            weight.copy_(fq(weight))
            carrier = weight_fake_quant(per_channel, 8).to(weight.device)
            carrier.scale = fq.scale.detach().clone() / 2 ** (8 - bits)
            carrier.zero_point = torch.zeros_like(fq.zero_point)
            carrier.disable_observer()
        m.weight_fake_quant = carrier
        changed += 1
    return changed


def set_mse_weight_scales(model: nn.Module) -> int:
    """Give every fake-quantized weight the scale that minimises its rounding MSE (post-training
    range setting, :mod:`edgekd.quantize.weight_range`) at its own bit width and granularity, and
    stop its observer so the scale stays; returns how many modules changed."""
    from edgekd.quantize.weight_range import mse_weight_scale

    changed = 0
    for m in model.modules():
        if not isinstance(m, _QATMixin):
            continue
        fq = m.weight_fake_quant
        bits = (fq.quant_max - fq.quant_min + 1).bit_length() - 1
        per_channel = fq.qscheme in (torch.per_channel_symmetric, torch.per_channel_affine)
        scale = mse_weight_scale(m.weight, bits, per_channel=per_channel)  # type: ignore[attr-defined,arg-type]
        with torch.no_grad():
            fq.disable_observer()
            fq.scale = scale.reshape(-1).float().clone().to(fq.scale.device)
            fq.zero_point = torch.zeros_like(fq.scale, dtype=fq.zero_point.dtype)
        changed += 1
    return changed


def strip_qat(model: nn.Module) -> nn.Module:
    """A plain copy of a fake-quantized ``model``: every QAT module back to its torch class, its weight
    replaced by the fake-quantized weight (the learnt grid), activations left in float. Exported and then
    quantized post-training (ONNX Runtime static QDQ), it gives the graph ONNX Runtime fuses fully, with
    the weights QAT adapted; ``distill.qat.export: requantize``."""
    import copy

    inverse = {v: k for k, v in _QAT_CLASS.items()}
    plain = copy.deepcopy(model).eval()
    for m in plain.modules():
        if not isinstance(m, _QATMixin):
            continue
        with torch.no_grad():
            m.weight_fake_quant.disable_observer()
            weight: torch.Tensor = m.weight  # type: ignore[attr-defined,assignment]
            weight.copy_(m.weight_fake_quant(weight))
        for name in ("input_fake_quant", "weight_fake_quant", "output_fake_quant"):
            delattr(m, name)
        m.__class__ = inverse[type(m)]  # type: ignore[assignment]
    return plain


def export_qdq_onnx(model: nn.Module, example_inputs: tuple[torch.Tensor, ...], path: Any, *,
                    input_names: list[str], output_names: list[str], opset: int = 17,
                    dynamic_batch: bool = True) -> None:
    """Export a QAT model as QDQ ONNX with the TorchScript exporter (dynamo does not lower
    FakeQuantize to Q/DQ), written atomically."""
    from edgekd.errors import ConfigError
    from edgekd.fileio import atomic_path

    if opset < 13:
        raise ConfigError(f"export.opset={opset}: per-channel QuantizeLinear needs opset >= 13",
                          hint="set export.opset to 13 or higher for a QAT student")
    freeze_qat(model)
    axes = {n: {0: "batch"} for n in [*input_names, *output_names]} if dynamic_batch else None
    import warnings

    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        # The observer/fake-quant on-off flags are meant to become trace constants once frozen.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(model, example_inputs, str(tmp), input_names=input_names, output_names=output_names,
                          opset_version=opset, dynamic_axes=axes, dynamo=False)

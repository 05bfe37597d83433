"""edgekd: distill a teacher into a small student, quantize it, export it to ONNX,
OpenVINO and TensorRT, prove the artifacts match, profile them on the device, and
gate latency in CI."""

__version__ = "0.1.0"

"""Exporters (ONNX, OpenVINO IR, TensorRT build plans/engines) and parity checks."""

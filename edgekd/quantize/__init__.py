"""Post-training quantization of ONNX models, per runtime, with measured accuracy.

- ``ort_static``: ONNX Runtime static INT8 (QDQ, U8S8 per-channel; minmax/entropy/percentile)
- ``ort_dynamic``: ONNX Runtime dynamic INT8 (linear-heavy models only)
- ``nncf_ov``: OpenVINO INT8 through NNCF, plain and accuracy-controlled
- ``fp16``: FP16 for GPU runtimes (IO kept FP32)
- ``fallback``: accuracy-aware fallback (sensitive layers back to FP32) for any runtime
- ``calibration``: calibration feeds (dataset, image folder, .npy, random with a warning)
- ``compare``: SQNR and map agreement of a quantized model vs FP32
- ``external``: what ``edgekd quantize`` runs on any ONNX model

Heavy or optional libraries are imported inside the functions that need them.
"""

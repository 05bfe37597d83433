# edgekd on a desktop NVIDIA GPU: TensorRT engines and ONNX Runtime CUDA.
# build: docker build -f docker/desktop-gpu.Dockerfile -t edgekd:gpu .
# run:   docker run --rm --gpus all -v "$PWD:/work" -v /sys:/sys:ro edgekd:gpu \
#            profile /work/student.onnx --device desktop-gpu --precision fp16 --out /work/p.json
#        (or --runtime nvidia on older Docker; /sys for CPU clocks and thermal zones)
FROM nvcr.io/nvidia/tensorrt:24.12-py3 AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv --system-site-packages /opt/edgekd
ENV PATH=/opt/edgekd/bin:$PATH
WORKDIR /src
RUN pip install onnxruntime-gpu==1.20.1
COPY pyproject.toml README.md ./
COPY edgekd ./edgekd
# nvml: NVML (nvidia-ml-py) for the GPU energy per inference, clocks and throttle reasons
RUN pip install ".[tensorrt,nvml]"

FROM nvcr.io/nvidia/tensorrt:24.12-py3
COPY --from=build /opt/edgekd /opt/edgekd
COPY devices /opt/edgekd-data/devices
COPY recipes /opt/edgekd-data/recipes
ENV PATH=/opt/edgekd/bin:$PATH PYTHONDONTWRITEBYTECODE=1 EDGEKD_DEVICES=/opt/edgekd-data/devices EDGEKD_RECIPES=/opt/edgekd-data/recipes
RUN useradd --create-home --uid 10001 edgekd
USER edgekd
WORKDIR /home/edgekd
ENTRYPOINT ["edgekd"]
CMD ["--help"]

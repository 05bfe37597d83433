# edgekd on NVIDIA Jetson (Orin, JetPack 6 / L4T r36.x): TensorRT and ONNX Runtime GPU.
# build (on the Jetson): docker build -f docker/jetson.Dockerfile -t edgekd:jetson .
# run:   docker run --rm --runtime nvidia -v "$PWD:/work" -v /sys:/sys:ro \
#            --device /dev/nvhost-ctrl --device /dev/nvhost-ctrl-gpu edgekd:jetson \
#            profile /work/student.engine --device jetson-orin-nano --out /work/p.json
#        (--runtime nvidia mounts the GPU libraries; /sys exposes clocks, nvpmodel and thermal zones)
FROM nvcr.io/nvidia/l4t-jetpack:r36.4.0 AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends python3-venv python3-pip \
    && rm -rf /var/lib/apt/lists/*
# system site-packages: the JetPack TensorRT Python bindings live there
RUN python3 -m venv --system-site-packages /opt/edgekd
ENV PATH=/opt/edgekd/bin:$PATH
WORKDIR /src
# onnxruntime-gpu built for JetPack 6 (CUDA 12.6) from the Jetson AI Lab index
RUN pip install onnxruntime-gpu==1.20.0 --extra-index-url https://pypi.jetson-ai-lab.dev/jp6/cu126
COPY pyproject.toml README.md ./
COPY edgekd ./edgekd
RUN pip install ".[remote]"

FROM nvcr.io/nvidia/l4t-jetpack:r36.4.0
RUN apt-get update && apt-get install -y --no-install-recommends python3-venv \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/edgekd /opt/edgekd
COPY devices /opt/edgekd-data/devices
COPY recipes /opt/edgekd-data/recipes
ENV PATH=/opt/edgekd/bin:$PATH PYTHONDONTWRITEBYTECODE=1 EDGEKD_DEVICES=/opt/edgekd-data/devices EDGEKD_RECIPES=/opt/edgekd-data/recipes
RUN useradd --create-home --uid 10001 edgekd && usermod -aG video edgekd
USER edgekd
WORKDIR /home/edgekd
ENTRYPOINT ["edgekd"]
CMD ["--help"]

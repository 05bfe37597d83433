# edgekd on an x86-64 / arm64 CPU host (CI runners, dev boxes).
# build: docker build -f docker/host-cpu.Dockerfile -t edgekd:host-cpu .
# run:   docker run --rm -v "$PWD:/work" -v /sys:/sys:ro edgekd:host-cpu profile /work/student.onnx --out /work/p.json
#        (-v /sys:/sys:ro lets the profiler read CPU frequency/governor/thermal sensors)
FROM python:3.11.10-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/edgekd
ENV PATH=/opt/edgekd/bin:$PATH
# torch first, pinned, CPU-only wheels (the default index would pull CUDA wheels: GBs for nothing)
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY edgekd ./edgekd
RUN pip install ".[openvino]"

FROM python:3.11.10-slim-bookworm
COPY --from=build /opt/edgekd /opt/edgekd
COPY devices /opt/edgekd-data/devices
COPY recipes /opt/edgekd-data/recipes
ENV PATH=/opt/edgekd/bin:$PATH PYTHONDONTWRITEBYTECODE=1 EDGEKD_DEVICES=/opt/edgekd-data/devices EDGEKD_RECIPES=/opt/edgekd-data/recipes
RUN useradd --create-home --uid 10001 edgekd
USER edgekd
WORKDIR /home/edgekd
ENTRYPOINT ["edgekd"]
CMD ["--help"]

# edgekd on a Raspberry Pi 4/5 (64-bit OS, arm64): ONNX Runtime, OpenVINO and LiteRT (XNNPACK) CPU.
# docker/install-board.sh does the install; scripts/sim-pi.sh runs the same script in a simulated board.
# build (on the Pi, or cross: docker buildx build --platform linux/arm64):
#        docker build -f docker/rpi.Dockerfile -t edgekd:rpi .
# run:   docker run --rm -v "$PWD:/work" -v /sys:/sys:ro --device /dev/vchiq edgekd:rpi \
#            profile /work/student.int8.onnx --device raspberry-pi-5 --out /work/p.json
#        (/sys for cpufreq and thermal zones; /dev/vchiq for vcgencmd throttling flags)
FROM arm64v8/python:3.11.10-slim-bookworm AS build
WORKDIR /src
COPY docker/install-board.sh /usr/local/bin/install-board.sh
COPY pyproject.toml README.md ./
COPY edgekd ./edgekd
RUN sh /usr/local/bin/install-board.sh /src /opt/edgekd

FROM arm64v8/python:3.11.10-slim-bookworm
COPY --from=build /opt/edgekd /opt/edgekd
COPY devices /opt/edgekd-data/devices
COPY recipes /opt/edgekd-data/recipes
ENV PATH=/opt/edgekd/bin:$PATH PYTHONDONTWRITEBYTECODE=1 EDGEKD_DEVICES=/opt/edgekd-data/devices EDGEKD_RECIPES=/opt/edgekd-data/recipes
RUN useradd --create-home --uid 10001 edgekd && usermod -aG video edgekd
USER edgekd
WORKDIR /home/edgekd
ENTRYPOINT ["edgekd"]
CMD ["--help"]

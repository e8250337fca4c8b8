# raner-pool on CPUs (Docker, or podman/buildah: scripts/build-image.sh).
#   docker build -t raner-pool:0.1.0 .   docker run --read-only --tmpfs /tmp -p 8000:8000 raner-pool:0.1.0
# Real models: mount them under /models and name them in a registry file (RANER_POOL_CONFIG), see deploy/.
# Build arguments, whose defaults are what a user needs: BASE_IMAGE (any Debian-like image with Python 3.11 and its
# venv module: `make image` uses a debootstrapped Debian, scripts/build-image.sh), TORCH_SOURCE (the pip options
# that say where the CPU torch wheel comes from) and PIP_CERT (a CA bundle for pip behind a TLS proxy; unset, pip's
# own).
ARG BASE_IMAGE=python:3.11.14-slim-trixie

# ---- builder: the project's wheel (the embedded default model is package data, so it travels inside) ----------
FROM ${BASE_IMAGE} AS builder
ARG PIP_CERT
WORKDIR /src
RUN python3 -m venv /opt/build
COPY pyproject.toml README.md ./
COPY raner_pool ./raner_pool
RUN /opt/build/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# ---- venv: torch and every dependency in the virtual environment the runtime takes whole (same path) ---------
# Debian's own Python refuses system-wide pip installs, hence a venv. Two layers, the most stable first: torch,
# pinned, the CPU build (an unpinned torch pulls gigabytes of CUDA packages); then the dependencies pyproject.toml
# lists, whose torch==2.13.0 the CPU build (2.13.0+cpu) already satisfies. What serving never reads is cut here,
# in a stage where binutils may be installed without reaching the runtime: bytecode for every module (--no-compile;
# the runtime's warm-up compiles what a run imports), torch's C++ headers, the C++ test suites and their binaries
# (130 MB), other test suites, jiojio's segmentation models (145 MB: jionlp imports jiojio, but only its segmenter
# reads them, through jiojio.init(), which the time and money rules never call), jionlp's dictionary archives
# once unpacked (16 MB; jionlp unpacks them into its package dir on first import, so that happens here: the
# running container's root filesystem is read-only), OpenVINO's GPU and NPU plugins and the frontends of formats
# other than ONNX (72 MB: the openvino backend compiles the ONNX export for the CPU), and the symbol tables of the
# compiled modules (strip
# --strip-unneeded, as Debian strips its own libraries: libtorch_cpu.so 434 -> 345 MB; auditwheel's vendored
# libraries in *.libs/ are left as they are).
FROM ${BASE_IMAGE} AS venv
ARG PIP_CERT
ARG TORCH_SOURCE="--index-url https://download.pytorch.org/whl/cpu"
# binutils from the base release's archive, whatever its version: it only strips and never reaches the runtime
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/*
# $TORCH_SOURCE is pip options, split into words on purpose, and no package: hadolint takes it for an unpinned one
# hadolint ignore=SC2086,DL3013
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --no-compile $TORCH_SOURCE torch==2.13.0
COPY pyproject.toml /opt/raner-pool/pyproject.toml
WORKDIR /opt/venv/lib/python3.11/site-packages
RUN python3 -c "import tomllib; print(*tomllib.load(open('/opt/raner-pool/pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" > /opt/raner-pool/requirements.txt \
    && /opt/venv/bin/pip install --no-cache-dir --no-compile -r /opt/raner-pool/requirements.txt \
    && /opt/venv/bin/python -c "import jionlp" > /dev/null \
    && rm -rf torch/include torch/test jiojio/models jionlp/dictionary/*.zip \
    && rm -f openvino/libs/libopenvino_intel_[gn]pu_plugin.so openvino/libs/cache.json \
        openvino/libs/libopenvino_*tensorflow*_frontend.so* openvino/libs/libopenvino_pytorch_frontend.so* \
        openvino/libs/libopenvino_paddle_frontend.so* openvino/libs/libopenvino_gguf_frontend.so* \
        openvino/libs/libopenvino_jax_frontend.so* \
    && find torch/bin -maxdepth 1 -type f \( -name "test_*" -o -name "*Test" -o -name "protoc*" \) -delete \
    && find . -depth -type d -name tests -not -path "./torch/*" -exec rm -rf {} + \
    && find . -name "*.so*" -type f -not -path "*.libs/*" -exec strip --strip-unneeded {} + \
    && /opt/venv/bin/python -c "import torch, numpy, scipy.sparse, onnxruntime, openvino, uvloop, tokenizers, jionlp; openvino.Core().get_versions('CPU')" > /dev/null

# ---- runtime: no compilers (slim has none), no pip cache, nothing of the build left behind ---------------------
# checkov:skip=CKV_DOCKER_7: the base image is a build argument whose default pins a tag (checkov reads no ARGs)
FROM ${BASE_IMAGE}
ARG PIP_CERT
LABEL org.opencontainers.image.title="raner-pool" \
      org.opencontainers.image.description="Chinese NER (PER, LOC, ORG) over pools of RaNER models, on CPUs" \
      org.opencontainers.image.licenses="Apache-2.0"

# Read-only root filesystem: the only writable place the process needs is /tmp (compose mounts a tmpfs there,
# Kubernetes an emptyDir), so HOME, TMPDIR and every cache point under it: ModelScope's hub cache, our ONNX
# exports, Hugging Face, matplotlib (imported by modelscope), and the Prometheus multiprocess dir that
# --workers N creates with tempfile. Bytecode is compiled at install time; none is written at run time.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    MODELSCOPE_CACHE=/tmp/modelscope \
    RANER_POOL_CACHE=/tmp/raner-pool \
    HF_HOME=/tmp/huggingface \
    MPLCONFIGDIR=/tmp/matplotlib \
    RANER_POOL_OFFLINE=1 \
    RANER_POOL_WEBUI_DIR=/app/webui \
    RANER_POOL_PORT=8000 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# The venv (the stage above), then the wheel alone (copied, not bind-mounted: buildah 1.28, Debian 12's, cannot
# mount from another stage; the copy costs 8 MB), so that a changed source file rebuilds only the last layers.
COPY --from=venv /opt/venv /opt/venv
COPY --from=builder /wheels /opt/raner-pool/wheels
RUN pip install --no-cache-dir --no-deps /opt/raner-pool/wheels/raner_pool-*.whl
# The warm-up: one prediction on every runtime `auto` weighs (ModelScope's pipeline, ONNX export and ONNX Runtime)
# with the extra types, and the server's imports, writing bytecode for just the modules a run imports; then
# nothing it cached (exports, timings) stays in the image.
RUN PYTHONDONTWRITEBYTECODE="" raner-pool predict --backend auto "2023年11月2日晚上8点，腾讯总裁刘炽平在深圳宣布追加投资2.8亿美元，营收同比增长百分之二十。" > /dev/null \
    && PYTHONDONTWRITEBYTECODE="" python3 -c "import raner_pool.server.main, raner_pool.server.app" \
    && rm -rf /tmp/* /tmp/.[!.]*

# A fixed UID/GID (not 1000, which host users tend to have) so that runAsUser, fsGroup and file ownership on
# mounted volumes can name it. No home directory in the image: HOME is /tmp.
RUN groupadd --system --gid 10001 raner \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin raner \
    && mkdir -p /models

WORKDIR /app
COPY webui/templates ./webui/templates
COPY webui/static ./webui/static

# /models: where real model dirs are mounted (read-only is enough), e.g. model = "/models/raner-base" in the
# registry file. /tmp: the one writable path; declared a volume so that `docker run --read-only` works as is.
# The registry file is optional: without RANER_POOL_CONFIG the server serves the embedded default model;
# mount one (e.g. at /config/models.toml) and set RANER_POOL_CONFIG=/config/models.toml.
VOLUME ["/tmp"]

USER 10001:10001
EXPOSE 8000

# /ready, not /health: 503 while models load and from SIGTERM on. Python's urllib raises on a 503, so no curl.
# The port is RANER_POOL_PORT's, which `serve` also reads (a container run with --network host picks its own).
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"RANER_POOL_PORT\"]}/ready', timeout=4)"]

# Exec form: raner-pool is PID 1 and gets SIGTERM itself (a shell form would put /bin/sh in between, which does
# not forward it). No init (tini) is needed: the server installs its own SIGTERM/SIGINT/SIGHUP handlers (PID 1
# gets no default ones), and with --workers N the supervisor forwards signals to its workers and reaps children
# with os.wait(), which also collects any orphan re-parented to it. After a drain the exit status is 0: uvicorn
# re-raises SIGTERM once its handlers are gone, and the kernel does not deliver to PID 1 a signal it has no handler
# for. The image can also run the other subcommands: docker run IMAGE predict "..." .
ENTRYPOINT ["raner-pool"]
CMD ["serve", "--host", "0.0.0.0"]

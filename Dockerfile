# raner-pool on CPUs (BuildKit, the default builder since Docker 23, for RUN --mount).
#   docker build -t raner-pool:0.1.0 .   docker run --read-only --tmpfs /tmp -p 8000:8000 raner-pool:0.1.0
# Real models: mount them under /models and name them in a registry file (RANER_POOL_CONFIG), see deploy/.

# ---- builder: the project's wheel (the embedded default model is package data, so it travels inside) ----------
FROM python:3.11.14-slim-trixie AS builder
WORKDIR /src
COPY pyproject.toml README.md ./
COPY raner_pool ./raner_pool
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# ---- runtime: no compilers (slim has none), no pip cache, nothing of the build left behind ---------------------
FROM python:3.11.14-slim-trixie
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
    RANER_POOL_WEBUI_DIR=/app/webui

# torch first, pinned, from the CPU index: an unpinned torch pulls gigabytes of CUDA packages. Then the wheel,
# whose own torch==2.13.0 requirement that CPU build (2.13.0+cpu) already satisfies. The wheel is bind-mounted
# from the builder, so it leaves no layer behind.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir /wheels/raner_pool-*.whl
# jionlp unpacks its dictionaries into its own package dir on first import: do it now, as root, because the
# running container's root filesystem is read-only.
RUN python -c "import raner_pool.recognizers.jionlp_import as j; j.jionlp()"

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
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=4)"]

# Exec form: raner-pool is PID 1 and gets SIGTERM itself (a shell form would put /bin/sh in between, which does
# not forward it). No init (tini) is needed: the server installs its own SIGTERM/SIGINT/SIGHUP handlers (PID 1
# gets no default ones), and with --workers N the supervisor forwards signals to its workers and reaps children
# with os.wait(), which also collects any orphan re-parented to it. The image can also run the other
# subcommands: docker run IMAGE predict "..." .
ENTRYPOINT ["raner-pool"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]

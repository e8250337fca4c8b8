# raner-pool server on CPU: `docker build -t raner-pool . && docker run -p 8000:8000 raner-pool`
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 RANER_POOL_OFFLINE=1
WORKDIR /app

# torch first, pinned to the CPU wheel: an unpinned torch pulls gigabytes of CUDA packages
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md ./
COPY raner_pool ./raner_pool
COPY webui/templates ./webui/templates
COPY webui/static ./webui/static
COPY server.py models.example.toml ./
RUN pip install . && useradd --create-home raner
ENV RANER_POOL_WEBUI_DIR=/app/webui

USER raner
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready')"
CMD ["raner-pool", "serve", "--host", "0.0.0.0", "--port", "8000"]

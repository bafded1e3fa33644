# LEWEL explorer. Two targets:
#
# - the default (last) one, the inference API (`python -m api`, port 8000) and the Streamlit app (port 8501) in one
#   image:
#     docker build -t lewel-explorer .
#     docker run --rm -p 8501:8501 -p 8000:8000 -v ~/checkpoints:/models lewel-explorer
#     docker run --rm --gpus all -p 8501:8501 -p 8000:8000 -v ~/checkpoints:/models lewel-explorer   # on the GPU
# - `frontend`, the Streamlit app alone (no torch: some 300 MB instead of gigabytes), talking to a service that runs
#   elsewhere, e.g. the image above on a GPU machine:
#     docker build --target frontend -t lewel-explorer-app .
#     docker run --rm -p 8501:8501 -e LEWEL_API_URL=http://gpu-host:8000 lewel-explorer-app
#
# No step downloads model weights: the demo models are copied from models/, the user's or the authors'
# checkpoints come in through the /models volume, and torchvision backbones are built with weights=None.

# The front end alone: the base dependencies and the [app] extra (numpy, Pillow, matplotlib, Streamlit, httpx).
# It imports from lewel/ only the torch-free drawing (lewel.drawing.render), so lewel/ is copied but none of its
# model dependencies are installed; the gallery, the maps and the figures come from the service.
FROM python:3.11-slim-bookworm AS frontend
ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    STREAMLIT_SERVER_HEADLESS=true \
    LEWEL_API_URL=http://127.0.0.1:8000
RUN useradd --uid 1000 --create-home --shell /usr/sbin/nologin lewel
WORKDIR /opt/lewel
COPY pyproject.toml README.md ./
COPY lewel/ ./lewel/
COPY app/ ./app/
RUN pip install --no-cache-dir -e ".[app]"
USER 1000:1000
EXPOSE 8501
# sh only to read LEWEL_API_URL; exec hands PID 1 (and SIGTERM) to the launcher, which waits for the service
CMD ["sh", "-c", "exec python -m app --api-url \"$LEWEL_API_URL\" --host 0.0.0.0 --port 8501"]

# The Debian release is named in the tag (python:3.11-slim alone now follows Debian's newest release) so that
# the apt package below comes from bookworm.
FROM python:3.11-slim-bookworm AS service

# MALLOC_ARENA_MAX: at most two glibc malloc arenas, so that the service's worker threads do not each keep the
# memory their requests freed (docs/api.md, "Memory that comes back"; the service sets the same at start-up).
ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    STREAMLIT_SERVER_HEADLESS=true \
    MALLOC_ARENA_MAX=2

# Debian's object cut-outs (/usr/share/tuxpaint/stamps), used by the app's generated multi-object scenes. Not
# version-pinned: the tag above fixes the Debian release, and the package is data only.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tuxpaint-stamps-default \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --uid 1000 --create-home --shell /usr/sbin/nologin lewel

WORKDIR /opt/lewel

# torch first, in a layer of its own, so that editing the code does not reinstall it. The pins are those of
# pyproject.toml. PyPI's default Linux x86_64 wheel of torch is the CUDA build (the CUDA libraries come as
# nvidia-* wheels), so the same image runs on the GPU when started with the NVIDIA runtime (`docker run --gpus all`)
# and on the CPU otherwise (LEWEL_DEVICE unset: cuda when available, else cpu).
RUN pip install --no-cache-dir torch==2.14.1 torchvision==0.29.1

COPY pyproject.toml README.md ./
COPY lewel/ ./lewel/
COPY api/ ./api/
COPY app/ ./app/
COPY models/ ./models/
COPY configs/ ./configs/
COPY static/ ./static/

# Editable install (-e), the way ./scripts/setup installs for development and CI: the code stays in /opt/lewel
# (one copy, no second one in site-packages), so every path computed from a package's location points into
# /opt/lewel: api/settings.py's bundled models folder (Path(__file__).parent.parent / "models") and the app's
# sample images (lewel/data/gallery.py: Path(__file__).parents[2] / "static" / "samples").
# torch is already there at the pinned version and is not reinstalled ([service] brings the library's [library]).
RUN pip install --no-cache-dir -e ".[service,app]"
# With --build-arg WITH_RAY=1, also Ray Serve (the [ray] extra): the image of the replicas of
# `python -m api.ray_serve` on a Ray cluster or KubeRay (docs/ray.md).
ARG WITH_RAY=0
RUN if [ "$WITH_RAY" = 1 ]; then pip install --no-cache-dir -e ".[ray]"; fi

# The demo models' folder, set explicitly so that it does not depend on the install mode above (a non-editable
# install would put api/ in site-packages, where Path(__file__).parent.parent / "models" does not exist).
ENV LEWEL_BUNDLED_MODELS_DIR=/opt/lewel/models
# The user's own and the authors' checkpoints: mount a host folder here (-v ~/checkpoints:/models). The folder is
# created and owned by the app's user before VOLUME so that a named volume starts out writable for it.
ENV LEWEL_MODELS_DIR=/models
RUN mkdir -p /models && chown lewel:lewel /models
VOLUME /models
# Profiles the service measures (POST /v1/models/{model}/profile) of models in a folder it may not write to (the
# bundled /opt/lewel/models is root's): written here, and read from here too (docs/api.md, "Profile builds").
ENV LEWEL_PROFILE_DIR=/home/lewel/profiles

# Numeric, so that a runtime can verify it is not root (Kubernetes' runAsNonRoot): 1000 is lewel.
USER 1000:1000

# 8501: the Streamlit app; 8000: the API (its docs at /docs).
EXPOSE 8501 8000

# Ready once the default model is loaded and has run once; loading can take a while, hence the start period.
# python's urllib, as slim images have no curl: a 503 (not ready) raises, so the check fails.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=8)"]

# The launcher starts the API on --host:--api-port and the app on --host:--port, and stops both on SIGTERM.
CMD ["python", "-m", "app", "--host", "0.0.0.0", "--port", "8501", "--api-port", "8000"]

# hmr-fit on an NVIDIA GPU: CUDA build of torch 2.13.0, the pinned stack of pyproject.toml, headless EGL rendering
# on the NVIDIA driver. Build: docker build -t hmr-fit .   Run: see docs/docker.md (docker run --gpus all ...).
# tests/test_dockerfile.py checks that the pins below equal pyproject.toml's dependencies, and lints this file.
FROM nvidia/cuda:12.8.1-runtime-ubuntu22.04

ARG PYTHON=python3.11
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu128
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # graphics: the container toolkit mounts the driver's EGL/GL libraries next to CUDA's
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics \
    PYOPENGL_PLATFORM=egl \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# Python 3.11 (deadsnakes: Ubuntu 22.04 ships 3.10); GL/EGL through glvnd (libegl1), Mesa as the fallback when no
# GPU is passed in; libglib2.0-0 for opencv-contrib-python; ffmpeg-free: OpenCV's wheel brings its own codecs.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends software-properties-common gpg-agent \
    && add-apt-repository -y ppa:deadsnakes/ppa \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
        ${PYTHON} ${PYTHON}-venv ${PYTHON}-dev \
        libegl1 libgl1 libgles2 libglvnd0 libegl-mesa0 libgl1-mesa-dri libglib2.0-0 libgomp1 \
    && apt-get purge -y software-properties-common gpg-agent && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/*

# glvnd looks for the NVIDIA EGL vendor library by this file; the driver's libEGL_nvidia.so.0 is mounted at run
# time (NVIDIA_DRIVER_CAPABILITIES includes graphics).
RUN mkdir -p /usr/share/glvnd/egl_vendor.d \
    && printf '{"file_format_version":"1.0.0","ICD":{"library_path":"libEGL_nvidia.so.0"}}\n' \
        > /usr/share/glvnd/egl_vendor.d/10_nvidia.json \
    && ${PYTHON} -m venv ${VIRTUAL_ENV}

# 1. torch: the CUDA build of the pinned version, from PyTorch's index (PyPI's default would be a different build).
# Its own layer (2.5 GB) so that changing another pin does not download it again.
# hadolint ignore=DL3059
RUN pip install --index-url ${TORCH_INDEX} torch==2.13.0

# 2. The pinned requirements of pyproject.toml (same pins; torch is already satisfied: 2.13.0+cu128 == 2.13.0).
# hadolint ignore=DL3059
RUN pip install \
        torch==2.13.0 \
        numpy==2.4.6 \
        scipy==1.17.1 \
        smplx==0.1.28 \
        trimesh==5.2.0 \
        pyrender==0.1.45 \
        PyOpenGL==3.1.0 \
        mediapipe==1.2.3 \
        opencv-contrib-python==5.1.0.95 \
        hydra-core==1.3.8 \
        omegaconf==2.3.1 \
        pillow==13.0.0 \
        tqdm==4.70.1

# 3. hmr-fit itself (its dependencies are installed above; --no-deps keeps the CUDA torch).
WORKDIR /opt/hmr-fit
COPY pyproject.toml README.md ./
COPY hmr_fit ./hmr_fit
COPY configs ./configs
COPY data ./data
RUN pip install --no-deps . && pip check

# Non-root user; mount inputs and outputs under /work.
RUN useradd --create-home --uid 1000 hmr
USER 1000:1000
WORKDIR /work
ENTRYPOINT ["hmr-fit"]
CMD ["--help"]

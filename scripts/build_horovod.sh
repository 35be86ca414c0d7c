#!/usr/bin/env bash
# Build Horovod 0.28.1 against TensorFlow 2.21 (Gloo on, CPU), caching the wheel.
#
# The published sdist does not build against TF 2.21: horovod/tensorflow/xla_mpi_ops.cc
# needs XLA headers the TF wheel lacks. We drop that one source from the CMake list
# (XLA-compiled Horovod ops are the only thing lost) and build with the system cmake
# (cmake 4 from PyPI rejects the bundled gloo). GPU clusters: export
# HOROVOD_GPU_OPERATIONS=NCCL (and HOROVOD_WITH_MPI=1) before `make horovod`.
set -euo pipefail
PY=${1:-.venv/bin/python}
CACHE=${HOROVOD_WHEEL_CACHE:-.cache/horovod}
VERSION=0.28.1
mkdir -p "$CACHE"
if "$PY" -c "import horovod.tensorflow" 2>/dev/null; then
  echo "horovod already installed: $("$PY" -c 'import horovod; print(horovod.__version__)')"
  exit 0
fi
wheel=$(ls "$CACHE"/horovod-"$VERSION"-*.whl 2>/dev/null | head -1 || true)
if [ -z "$wheel" ]; then
  echo "building horovod $VERSION (about 3-5 minutes on 2 cores)..."
  work=$(mktemp -d)
  "$PY" -m pip download -q --no-deps --no-binary :all: "horovod==$VERSION" -d "$work"
  tar -xzf "$work"/horovod-"$VERSION".tar.gz -C "$work"
  src="$work/horovod-$VERSION"
  sed -i '/xla_mpi_ops.cc/d' "$src/horovod/tensorflow/CMakeLists.txt"
  # The build needs cmake on PATH and must not pick up a PyPI cmake 4 from the venv.
  export PATH="/usr/bin:$PATH"
  export HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1
  export HOROVOD_WITHOUT_MPI=${HOROVOD_WITHOUT_MPI:-1} MAKEFLAGS="-j$(nproc)"
  "$PY" -m pip wheel -q --no-build-isolation --no-deps "$src" -w "$CACHE"
  rm -rf "$work"
  wheel=$(ls "$CACHE"/horovod-"$VERSION"-*.whl | head -1)
fi
"$PY" -m pip install -q --no-deps "$wheel"
# horovod's own runtime needs (cloudpickle, psutil, pyyaml, packaging) without touching TF.
"$PY" -m pip install -q cloudpickle psutil pyyaml packaging
"$PY" -c "import horovod; print('horovod', horovod.__version__, 'installed from', '$wheel')"

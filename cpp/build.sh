#!/usr/bin/env bash
# Build cpp/build/zoo_infer against the installed torch and torchvision wheels (no CMake, no CUDA toolkit needed).
#   bash cpp/build.sh            # PYTHON=python3.x to pick an interpreter
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
PY="${PYTHON:-python3}"
CXX="${CXX:-g++}"
command -v "$CXX" >/dev/null 2>&1 || { echo "cpp/build.sh: error: no C++ compiler '$CXX' (install g++ >= 10: apt-get install g++)" >&2; exit 1; }
info=$("$PY" - <<'PY' 2>/dev/null
import os, sysconfig
import torch, torchvision
tv = os.path.dirname(torchvision.__file__)
print(os.path.dirname(torch.__file__))
print(int(torch._C._GLIBCXX_USE_CXX11_ABI))
print(os.path.join(sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LDLIBRARY")))
print(os.path.join(tv, "_C_stable.so") if os.path.exists(os.path.join(tv, "_C_stable.so")) else os.path.join(tv, "_C.so"))
print(os.path.join(tv, "image_stable.so") if os.path.exists(os.path.join(tv, "image_stable.so")) else os.path.join(tv, "image.so"))
PY
) || { echo "cpp/build.sh: error: $PY cannot import torch and torchvision: pip install torch==2.14.1 torchvision==0.29.1" >&2; exit 1; }
{ read -r TORCH; read -r ABI; read -r LIBPY; read -r TVOPS; read -r TVIMG; } <<<"$info"
for f in "$LIBPY" "$TVOPS" "$TVIMG"; do [ -f "$f" ] || { echo "cpp/build.sh: error: missing $f" >&2; exit 1; }; done
mkdir -p "$here/build"
"$CXX" -std=c++20 -O2 -o "$here/build/zoo_infer" "$here/zoo_infer.cpp" \
  -D_GLIBCXX_USE_CXX11_ABI="$ABI" -I"$TORCH/include" -I"$TORCH/include/torch/csrc/api/include" \
  -DZOO_LIBPYTHON="\"$LIBPY\"" -DZOO_TORCH_PYTHON="\"$TORCH/lib/libtorch_python.so\"" -DZOO_TORCHVISION_OPS="\"$TVOPS\"" -DZOO_TORCHVISION_IMAGE="\"$TVIMG\"" \
  -L"$TORCH/lib" -Wl,-rpath,"$TORCH/lib" -Wl,--no-as-needed -ltorch -ltorch_cpu -lc10 -ldl
echo "$here/build/zoo_infer"

#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` (the local engine) from the source vendored in the
# llama-cpp-python sdist on PyPI, for any CPU of the machine's architecture.
#
#   scripts/build-engine.sh DEST [VARIANT]
#
# VARIANT (default `portable`):
#   portable       GGML_NATIVE=OFF: x86-64 with AVX2/FMA/F16C (every x86 server since 2015),
#                  generic armv8 on arm64. Never uses AVX-512 or AMX, so a VM that reports
#                  AMX but does not enable it cannot crash it. This is what make run ships.
#   native-no-amx  -march=native minus AMX: for benchmarks only (bound to this CPU).
#
# The binary is linked statically and lands in DEST/bin/llama-server with DEST/build-info
# recording the version and flags; the Makefile rebuilds when they differ.
set -euo pipefail

dest=${1:?usage: build-engine.sh DEST [portable|native-no-amx]}
variant=${2:-portable}
version=$(grep -E '^llama-cpp-python==' "$(dirname "$0")/../engine.txt" | cut -d= -f3)
jobs=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}

flags=(-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_BACKEND_DL=OFF
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON
  -DGGML_OPENMP=ON)
case "$variant" in
  portable) flags+=(-DGGML_NATIVE=OFF) ;;
  native-no-amx) flags+=(-DGGML_NATIVE=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
    "-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    "-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16") ;;
  *) echo "unknown variant: $variant (portable or native-no-amx)" >&2; exit 2 ;;
esac
info="llama-cpp-python==$version variant=$variant arch=$(uname -m) flags=${flags[*]}"
if [ -x "$dest/bin/llama-server" ] && [ "$(cat "$dest/build-info" 2>/dev/null)" = "$info" ]; then
  echo "   engine up to date ($variant)"; exit 0
fi

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
echo "   fetching the llama.cpp source (llama-cpp-python $version sdist from PyPI)"
python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
  "llama-cpp-python==$version" -d "$work" >/dev/null
tar -xzf "$work"/llama_cpp_python-*.tar.gz -C "$work"
src=$(echo "$work"/llama_cpp_python-*/vendor/llama.cpp)
command -v cmake >/dev/null || { echo "cmake is missing (apt-get install cmake)" >&2; exit 1; }
cmake -S "$src" -B "$work/build" "${flags[@]}" >"$work/cmake.log" 2>&1 \
  || { tail -30 "$work/cmake.log"; exit 1; }
echo "   compiling llama-server ($variant, $jobs jobs; about 5 minutes on 2 cores)"
# One line per 10 % (it may share the terminal with other install steps running in parallel).
cmake --build "$work/build" -j "$jobs" --target llama-server 2>&1 \
  | awk '/^\[ *[0-9]+%\]/ { p = int(substr($0, 2, 3)); if (p >= shown + 10) { shown = p - p % 10; print "   compiling llama-server: " shown "%"; fflush() } }
         /error/ { print; fflush() }'
mkdir -p "$dest/bin"
install -m 0755 "$work/build/bin/llama-server" "$dest/bin/llama-server.new"
mv "$dest/bin/llama-server.new" "$dest/bin/llama-server"
printf '%s\n' "$info" >"$dest/build-info"
echo "   engine built: $dest/bin/llama-server"

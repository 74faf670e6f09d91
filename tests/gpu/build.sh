#!/usr/bin/env bash
# Builds the GPU smoke folder: a self-contained, trimmed linux-x64 publish of vitgen-gpu-smoke with the parity
# fixtures and run-on-device.sh. Copy OUT_DIR to a machine with an NVIDIA GPU (driver + cuBLAS 12 or 13; no .NET
# needed) and run OUT_DIR/run-on-device.sh there.
#   tests/gpu/build.sh OUT_DIR
set -euo pipefail
if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$1"
mkdir -p "$out"
dotnet publish "$here/ViTGen.GpuSmoke.csproj" -c Release -r linux-x64 -o "$out" -warnaserror -p:DebugType=none
chmod +x "$out/run-on-device.sh" "$out/vitgen-gpu-smoke"
size=$(du -sm "$out" | cut -f1)
echo "GPU smoke folder: $out (${size} MB)"
if (( size > 50 )); then
    echo "error: the folder is ${size} MB, over the 50 MB budget" >&2
    exit 1
fi
# What needs no GPU (fixture files, bounds, the random ViT-B/16 checkpoint) through the CPU models, here and now,
# so that a broken folder never costs a GPU machine's time.
"$out/vitgen-gpu-smoke" --self-test > "$out/self-test.txt" || { cat "$out/self-test.txt"; echo "error: the self-test failed" >&2; exit 1; }
tail -n 1 "$out/self-test.txt"

#!/usr/bin/env bash
# Times ViTGen (`vitgen bench`) and ONNX Runtime (../shared/peers/ort_bench.js) on the same models in one run,
# alternating runs, and prints a Markdown table of medians and ratios (ViTGen / ORT).
#   usage: tests/bench/compare.sh [MODELS] [THREADS] [ROUNDS]     e.g. tests/bench/compare.sh "tiny32 b16" "1 2" 3
# Needs the peers (../shared/peers/setup.sh: Debian's PyTorch to export ONNX, npm's onnxruntime-node).
# r50b16 (the hybrid ViT-B/16 on a ResNet-50 trunk) is exported by tests/bench/export_hybrid_onnx.py: a row that is
# reported, not held to any ratio.
# Not part of CI: timings need a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
models=${1:-"tiny32 ti16 s16 b16 b32 l16 r50b16"}
threads=${2:-"1 2"}
rounds=${3:-3}
batch=${BATCH:-1}   # BATCH=8 compares throughput: the ratio of medians is then the inverse ratio of images/s
peers=../shared/peers
onnx_dir=${VITGEN_ONNX_DIR:-/tmp/vitgen-onnx}
mkdir -p "$onnx_dir"
dotnet build src/Cli -c Release -f net10.0 -v quiet -nologo >/dev/null
vitgen="dotnet src/Cli/bin/Release/net10.0/vitgen.dll"

size_of() { case $1 in tiny32) echo 32;; *) echo 224;; esac; }
iterations_of() { case $1 in tiny32) echo 200;; ti16) echo 50;; l16|r50b16) echo 5;; *) echo 10;; esac; }
export_model() {
  case $1 in
    r50b16) /usr/bin/python3 tests/bench/export_hybrid_onnx.py "$2" ;;
    *) /usr/bin/python3 "$peers/export_onnx.py" "$1" "$2" ;;
  esac
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }

echo "| model | threads (batch $batch) | ViTGen median ms | ORT median ms | ratio | ViTGen GFLOP/s |"
echo "|---|---|---|---|---|---|"
for m in $models; do
  [ -f "$onnx_dir/$m.onnx" ] || export_model "$m" "$onnx_dir/$m.onnx" >/dev/null 2>&1
  for t in $threads; do
    ours=(); theirs=(); gflops=()
    n=$(iterations_of "$m")
    for ((r = 0; r < rounds; r++)); do
      line=$($vitgen bench --model "$m" --threads "$t" --batch "$batch" --iterations "$n" --warmup 3 --json)
      ours+=("$(field median_ms <<<"$line")"); gflops+=("$(field gflops <<<"$line")")
      line=$(node "$peers/ort_bench.js" "$onnx_dir/$m.onnx" --size "$(size_of "$m")" --threads "$t" --batch "$batch" --iterations "$n")
      theirs+=("$(field median_ms <<<"$line")")
    done
    a=$(printf '%s\n' "${ours[@]}" | median); b=$(printf '%s\n' "${theirs[@]}" | median); g=$(printf '%s\n' "${gflops[@]}" | median)
    echo "| $m | $t | $a | $b | $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", a / b}') | $g |"
  done
done

#!/usr/bin/env bash
# Runs the GPU smoke check on this machine and writes REPORT_DIR/report.txt (default: $OUT, else ./gpu-report):
# nvidia-smi facts, the smoke program's checks (which libcuda and cuBLAS it bound, every parity fixture through
# LoadCuda against PyTorch in FP32 and TF32, batches 1/8/64/70, threads, concurrent instances, the debug switch,
# ViT-B/16 throughput), and compute-sanitizer on one small fixture when it is installed. Budget: under 4 minutes.
# Exit code: the smoke program's (0 passed, 1 a check failed, 3 no usable GPU path: no libcuda.so.1, no cuBLAS 12/13,
# or no device), or 124 when it ran out of time.
#   ./run-on-device.sh [REPORT_DIR]
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
report_dir="${1:-${OUT:-$PWD/gpu-report}}"
mkdir -p "$report_dir"
report="$report_dir/report.txt"
: > "$report"
log() { echo "$@" | tee -a "$report"; }

log "== host: $(uname -srm), $(nproc) CPUs, $(date -u +%FT%TZ)"
if command -v nvidia-smi > /dev/null; then
    log "== nvidia-smi"
    timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap,clocks.max.sm,power.limit --format=csv 2>&1 | tee -a "$report"
    timeout 20 nvidia-smi 2>&1 | head -n 12 | tee -a "$report"
else
    log "== nvidia-smi: not found"
fi
log "== libraries the loader can see"
(ldconfig -p 2>/dev/null | grep -E 'libcuda\.so\.1|libcublas(Lt)?\.so\.1[23]' || echo "(none in the ldconfig cache)") | tee -a "$report"

log "== vitgen-gpu-smoke"
timeout 200 "$here/vitgen-gpu-smoke" 2>&1 | tee -a "$report"
status=${PIPESTATUS[0]}
log "== vitgen-gpu-smoke exit code $status"

if [[ $status -ne 3 && $status -ne 124 ]] && command -v compute-sanitizer > /dev/null; then
    log "== compute-sanitizer (memcheck, fixture basic)"
    timeout 60 compute-sanitizer --tool memcheck --error-exitcode 9 "$here/vitgen-gpu-smoke" --sanitize 2>&1 | tail -n 30 | tee -a "$report"
    log "== compute-sanitizer exit code ${PIPESTATUS[0]}"
else
    log "== compute-sanitizer: skipped (not installed, or the smoke program could not use the GPU)"
fi
log "== report: $report"
exit "$status"

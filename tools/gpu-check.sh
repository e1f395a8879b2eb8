#!/usr/bin/env bash
# The GPU runbook: one call on a lent NVIDIA GPU machine that runs layca's test binaries, a
# layca-bench comparison of every OpenCL device there and the PyTorch CUDA step on the same
# models, inside ~9 minutes, with at most 8 log files under $OUT.
#
#   tools/gpu-check.sh prepare        HERE, after building: collects the carried packages
#                                     (../shared/device/fetch-debs.sh) into .device-debs/
#   OUT=DIR tools/gpu-check.sh        ON the GPU machine (carry .device-debs and build), or here
#                                     as a dry run against PoCL: no GPU, no torch needed; it says
#                                     what it skipped
#
# Environment: GPU_CHECK_BUDGET (seconds for everything, default 540), GPU_CHECK_TESTS (test
# binaries to run, default: every device suite on a GPU, test_rt and test_optim in a dry run),
# GPU_CHECK_MODELS (model files, default mlp3, mlp11, small_cnn, cifar10_vgg_small),
# GPU_CHECK_PYTHON (the interpreter with torch, default python3).
# Files under $OUT: summary.txt (what ran, passed, failed, skipped, and how long), env.txt
# (nvidia-smi, OpenCL platforms, libraries), tests.log (TAP of every test binary), bench.log
# (layca-bench's progress and table), bench.md, bench.json, bench.png, torch.jsonl.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 1

if [ "${1:-}" = "prepare" ]; then
  fetch="$root/../shared/device/fetch-debs.sh"
  [ -x "$fetch" ] || { echo "gpu-check: $fetch not found (it lives in the project's shared folder)" >&2; exit 1; }
  [ -x build/tools/layca-bench ] || { echo "gpu-check: build first (tools/setup.sh)" >&2; exit 1; }
  if [ -d .git ]; then
    exec "$fetch" build/tools/layca build/tools/layca-bench build/tests/test_*
  fi
  # a git worktree (.git is a file): fetch-debs.sh wants .git/info/exclude, so it runs in a scratch
  # folder and its .device-debs moves here (.gitignore already ignores it)
  scratch=$(mktemp -d) || exit 1
  mkdir -p "$scratch/.git/info"
  (cd "$scratch" && "$fetch" "$root"/build/tools/layca "$root"/build/tools/layca-bench "$root"/build/tests/test_*) || {
    rm -rf "$scratch"; exit 1; }
  rm -rf .device-debs && mv "$scratch/.device-debs" . && rm -rf "$scratch"
  exit 0
fi
[ $# -eq 0 ] || { echo "usage: OUT=DIR tools/gpu-check.sh | tools/gpu-check.sh prepare" >&2; exit 2; }
: "${OUT:?gpu-check: set OUT to the folder for the logs}"
mkdir -p "$OUT"
start=$(date +%s)
budget=${GPU_CHECK_BUDGET:-540}
summary="$OUT/summary.txt"
: >"$summary"
say() { echo "gpu-check: $*" | tee -a "$summary" >&2; }
left() { echo $((budget - ($(date +%s) - start))); }
# seconds for a step: at most $1, and never past the budget (minus $2 kept for later steps)
slot() {
  local s=$(( $(left) - ${2:-0} ))
  [ "$s" -gt "$1" ] && s=$1
  echo "$s"
}

# ---- the machine ----
{
  echo "== date"; date -u
  echo "== uname"; uname -a
  echo "== nvidia-smi"; nvidia-smi 2>&1 || echo "(no nvidia-smi)"
} >"$OUT/env.txt" 2>&1
gpu=false
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  gpu=true
  say "NVIDIA GPU: $(nvidia-smi -L | head -n 1)"
else
  say "no NVIDIA GPU here: dry run (the OpenCL devices present, fewer tests, no CUDA)"
fi

# binaries built on the development machine run through the carried loader when it is there
# (setup-opencl.sh's loader and library path, as a command prefix usable under `timeout`)
run=()
if [ -f .device-debs/setup-opencl.sh ]; then
  # shellcheck disable=SC1091
  . .device-debs/setup-opencl.sh >>"$OUT/env.txt" 2>&1
  run=("${P:-/opt/lc-deps}/lib64/ld-linux-x86-64.so.2" --library-path "$LC_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
  say "carried packages unpacked (.device-debs); binaries run through the carried loader"
else
  say "no .device-debs: binaries run with this machine's own libraries"
fi
lc_run() { "${run[@]}" "$@"; }
{
  echo "== layca devices"; lc_run build/tools/layca devices 2>&1
  echo "== ldd layca-bench"; ldd build/tools/layca-bench 2>&1 | head -n 40
} >>"$OUT/env.txt" 2>&1
if ! lc_run build/tools/layca devices >/dev/null 2>&1; then
  say "FAILED: layca sees no OpenCL device (see env.txt); tests and layca-bench skipped"
  opencl=false
else
  opencl=true
  grep -q "GPU" <(lc_run build/tools/layca devices 2>/dev/null) && ocl_gpu=true || ocl_gpu=false
  if $ocl_gpu; then say "OpenCL GPU device found"; else say "no OpenCL GPU device (the NVIDIA driver exposes no OpenCL?)"; fi
fi

export LAYCA_SOURCE_ROOT="$root" LAYCA_BUILD_ROOT="$root/build" CK_DEFAULT_TIMEOUT=600
export LAYCA_CACHE_DIR="${TMPDIR:-/tmp}/gpu-check-cache-$$"
[ -d "$root/../shared" ] && export LAYCA_SHARED="$root/../shared"
mkdir -p "$LAYCA_CACHE_DIR"

# ---- test binaries (directly: meson's files hold the build machine's paths) ----
if $gpu; then
  # test_cli and test_study start the layca binaries as child processes, which would not go
  # through lc_run: left out on the GPU machine unless named in GPU_CHECK_TESTS
  default_tests="test_rt test_exec test_optim test_train test_core test_ir test_ref test_model test_data"
  ${ocl_gpu:-false} && export LAYCA_REQUIRE_DEVICE=1
else
  default_tests="test_rt test_optim"
fi
tests=${GPU_CHECK_TESTS:-$default_tests}
: >"$OUT/tests.log"
pass=0; fail=0; skipped=""
if $opencl; then
  for t in $tests; do
    bin="build/tests/$t"
    [ -x "$bin" ] || { skipped="$skipped $t(not built)"; continue; }
    s=$(slot 240 240)
    if [ "$s" -lt 20 ]; then skipped="$skipped $t(no time left)"; continue; fi
    echo "== $t (limit ${s}s)" >>"$OUT/tests.log"
    t0=$(date +%s)
    (cd build/tests && timeout "$s" "${run[@]}" "./$t" >>"$OUT/tests.log" 2>&1)
    rc=$?
    ok=$(sed -n "/^== $t /,\$p" "$OUT/tests.log" | grep -c '^ok ')
    bad=$(sed -n "/^== $t /,\$p" "$OUT/tests.log" | grep -c '^not ok ')
    pass=$((pass + ok)); fail=$((fail + bad))
    [ $rc -eq 124 ] && say "$t: stopped at its ${s}s limit"
    say "$t: exit $rc, $ok passed, $bad failed, $(( $(date +%s) - t0 ))s"
  done
fi
[ -n "$skipped" ] && say "tests skipped:$skipped"
say "tests: $pass passed, $fail failed"

# ---- layca-bench: every OpenCL device side by side ----
if $gpu; then
  models=${GPU_CHECK_MODELS:-"models/mlp3.json models/mlp11.json models/small_cnn.json models/cifar10_vgg_small.json"}
  gemms="128x784x784,1024x1024x1024,4096x4096x4096"
else
  models=${GPU_CHECK_MODELS:-"models/mlp3.json"}
  gemms="128x784x784"
fi
margs=""
for m in $models; do margs="$margs --model $m"; done
if $opencl; then
  s=$(slot 240 60)
  if [ "$s" -ge 30 ]; then
    t0=$(date +%s)
    # shellcheck disable=SC2086
    timeout "$s" "${run[@]}" build/tools/layca-bench --compare --quick --repeats 3 --gemm "$gemms" $margs \
        --report "$OUT/report" >"$OUT/bench.log" 2>&1
    rc=$?
    for f in bench.md bench.json bench.png; do [ -f "$OUT/report/$f" ] && mv "$OUT/report/$f" "$OUT/$f"; done
    rm -rf "$OUT/report"
    [ $rc -eq 124 ] && say "layca-bench: stopped at its ${s}s limit (bench.log has what it measured)"
    say "layca-bench --compare: exit $rc, $(( $(date +%s) - t0 ))s (bench.md, bench.json, bench.png)"
  else
    say "layca-bench skipped: no time left"
  fi
else
  say "layca-bench skipped: no OpenCL device"
fi

# ---- PyTorch on CUDA, the same models ----
py=${GPU_CHECK_PYTHON:-python3}
: >"$OUT/torch.jsonl"
if ! $gpu; then
  say "PyTorch CUDA step skipped: no NVIDIA GPU"
elif ! "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1; then
  say "PyTorch CUDA step skipped: $py has no torch with CUDA"
else
  s=$(slot 120 0)
  if [ "$s" -ge 15 ]; then
    # shellcheck disable=SC2086
    PYTHONUNBUFFERED=1 timeout "$s" "$py" tools/bench_torch.py $models --device cuda --steps 50 \
        >"$OUT/torch.jsonl" 2>>"$OUT/bench.log"
    say "PyTorch CUDA: exit $?, $(wc -l <"$OUT/torch.jsonl") models (torch.jsonl)"
  else
    say "PyTorch CUDA step skipped: no time left"
  fi
fi
rm -rf "$LAYCA_CACHE_DIR"
say "done in $(( $(date +%s) - start ))s"
[ "$fail" -eq 0 ]

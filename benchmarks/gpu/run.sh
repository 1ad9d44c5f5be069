#!/usr/bin/env bash
# The GPU checks in one go (one NVIDIA H100/H200, about 8 minutes): every JSON, picture and log lands in
# $RESULTS (default reports/gpu), and, where the device tool's $OUT is set, packed as $OUT/gpu-results.tgz.
#
#   benchmarks/gpu/run.sh [--dry-run] [STEP ...]
#
# Steps (default: all, in this order):
#   env          the machine: GPU, driver, torch, CUDA, packages (env.txt)
#   epoch        one MNIST epoch: the book's pipeline, the eager fast path, the captured step (mnist-epoch.json)
#   sweep        CPU versus CUDA: MLP training steps, width x batch, fp32/TF32/bf16, eager and CUDA graphs (sweep/)
#   pytest       pytest -m cuda --runslow (pytest.log, pytest-cuda.xml)
#   conformance  conformance --quick --explain on cuda cuda-tf32 cuda-bf16 cuda-graphs (conformance/)
#   accuracy     bench --to-accuracy on the same backends (to-accuracy/)
#   layers       diverge --layers on MNIST's first step for each backend: total/added/inherited per layer and
#                each Linear against its rounding bound (layers/: a JSON and a chart per backend)
# epoch and sweep time the GPU alone; pytest, conformance and accuracy then run side by side on their own
# CPU cores (their seconds are read with that in mind).
#
# Variables: BACKENDS (default: the four CUDA backends), PYTEST_PATHS (default: the whole suite), LIMIT (each of
# the side-by-side steps' seconds, default 290), RESULTS, PYTHON, TORCHMECH_DATA.
# --dry-run: the same commands, shrunk, on the CPU (CPU backends stand in for the CUDA ones): the plumbing
# tried where there is no GPU. Python: $PYTHON, else .venv/bin/python (make test's), else python3; carried
# wheels in .whl/ are installed to /tmp/site; MNIST as *.gz in .gpu/mnist/ is adopted (offline machines).
set -uo pipefail
cd "$(dirname "$0")/../.."

dry=0
steps=()
for arg in "$@"; do
    case $arg in
        --dry-run) dry=1 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        env|epoch|sweep|pytest|conformance|accuracy|layers) steps+=("$arg") ;;
        *) echo "run.sh: unknown step or option '$arg' (steps: env epoch sweep pytest conformance accuracy layers;" \
                "option: --dry-run)" >&2; exit 2 ;;
    esac
done
[ ${#steps[@]} -eq 0 ] && steps=(env epoch sweep pytest conformance accuracy layers)
wants() { [[ " ${steps[*]} " == *" $1 "* ]]; }

export RESULTS=${RESULTS:-reports/gpu}
mkdir -p "$RESULTS"
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TORCHMECH_DATA=${TORCHMECH_DATA:-$HOME/.cache/torchmech}

if [ $dry = 1 ]; then
    device=cpu; backends=${BACKENDS:-cpu-bf16 deterministic}
    epoch_args="--epochs 1 --book-batches 20"; sweep_args="--quick --cuda-graphs"
    pytest_args=(-m cuda -q); conf_args=(--quick --sections s3 s4); acc_args=(--models mpg)
else
    device=cuda; backends=${BACKENDS:-cuda cuda-tf32 cuda-bf16 cuda-graphs}
    epoch_args="--epochs 20"; sweep_args="--widths 32 128 512 1024 4096 --batches 1 64 4096 --cuda-graphs"
    # -v: each case's verdict as it finishes (a step stopped at its limit writes no report; Lightning's fit
    # catches the first interrupt)
    pytest_args=(-m cuda --runslow -v); conf_args=(--quick); acc_args=()
fi

pack() {  # what the device tool brings back: at most 8 files, so one archive and the summary
    if [ -n "${OUT:-}" ] && [ "$OUT" != "$RESULTS" ]; then
        tar -czf "$OUT/gpu-results.tgz" -C "$RESULTS" . && cp "$RESULTS/summary.txt" "$OUT/" 2>/dev/null
    fi
    return 0
}
began=$SECONDS
step() {  # step NAME TIMEOUT COMMAND...: run, log to RESULTS/NAME.log, note the exit status and seconds
    local name=$1 limit=$2 start=$SECONDS rc
    shift 2
    timeout --signal=INT --kill-after=15 "$limit" "$@" >"$RESULTS/$name.log" 2>&1
    rc=$?
    echo "$name: exit $rc in $((SECONDS - start)) s$([ $rc = 124 ] && echo " (stopped at its $limit s limit)")" \
        >>"$RESULTS/summary.txt"
    return 0
}
: >"$RESULTS/summary.txt"

# --- what this machine has; the carried wheels and data ----------------------------------------------
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
if [ -d .gpu/mnist ]; then
    mkdir -p "$TORCHMECH_DATA/MNIST/raw" && cp -n .gpu/mnist/*.gz "$TORCHMECH_DATA/MNIST/raw/"
fi
"$PYTHON" -c "from torchmech.chapter.data.mnist import fetch_mnist; fetch_mnist(sources=[])" 2>/dev/null \
    || "$PYTHON" -m torchmech data fetch || { echo "run.sh: MNIST is not there and cannot be fetched" >&2; exit 1; }

if wants env; then
    {
        date -u +"date: %Y-%m-%d %H:%M UTC"
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1 || true
        "$PYTHON" - <<'EOF'
import importlib.metadata as md, json, os, platform, torch
from torchmech.runtime.devices import environment
env = environment("cuda" if torch.cuda.is_available() else "cpu")
env |= {"cuda": torch.version.cuda, "cudnn": str(torch.backends.cudnn.version()), "cpus": str(os.cpu_count()),
        "platform": platform.platform()}
for p in ("lightning", "torchmetrics", "torchvision", "numpy", "pytest", "hypothesis", "mlxtend", "pytorch-ignite"):
    try:
        env[p] = md.version(p)
    except md.PackageNotFoundError:
        env[p] = "absent"
print(json.dumps(env, indent=1))
EOF
    } >"$RESULTS/env.txt" 2>&1
fi

# --- the GPU alone: timings ---------------------------------------------------------------------------
# shellcheck disable=SC2086  # the argument strings split on purpose
wants epoch && step epoch 90 "$PYTHON" benchmarks/gpu/mnist_epoch.py --device $device $epoch_args --out "$RESULTS"
# shellcheck disable=SC2086
wants sweep && step sweep 140 "$PYTHON" -m torchmech bench $sweep_args --out "$RESULTS/sweep"
pack

# --- side by side: correctness on CUDA ----------------------------------------------------------------
pids=()
limit=${LIMIT:-290}
read -r -a pytest_paths <<<"${PYTEST_PATHS:-}"
if wants pytest; then
    OMP_NUM_THREADS=4 step pytest "$limit" "$PYTHON" -m pytest "${pytest_paths[@]}" "${pytest_args[@]}" -rfE \
        -p no:cacheprovider --durations=25 \
        --junitxml="$RESULTS/pytest-cuda.xml" &
    pids+=($!)
fi
if wants conformance; then
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=6 step conformance "$limit" "$PYTHON" -m torchmech conformance --backends $backends \
        "${conf_args[@]}" --explain --workers 6 --out "$RESULTS/conformance" &
    pids+=($!)
fi
if wants accuracy; then
    # shellcheck disable=SC2086
    step accuracy "$limit" "$PYTHON" -m torchmech bench --to-accuracy --backends $backends "${acc_args[@]}" --threads 4 \
        --out "$RESULTS/to-accuracy" &
    pids+=($!)
fi
[ ${#pids[@]} -gt 0 ] && wait "${pids[@]}"
if wants layers; then  # after the others: seconds each, the GPU to itself
    mkdir -p "$RESULTS/layers"
    # shellcheck disable=SC2016,SC2086  # $b expands in the inner shell; the backends split on purpose
    step layers 120 bash -c 'for b in "$@"; do "$0" -m torchmech diverge --b "$b" --claim s8.mnist.test_acc \
        --steps 1 --layers --json --out "$RESULTS/layers" >"$RESULTS/layers/$b.json" || true; done' \
        "$PYTHON" $backends
fi
echo "total: $((SECONDS - began)) s" >>"$RESULTS/summary.txt"

# --- the summary: the last lines of each step ---------------------------------------------------------
{
    echo
    for name in env epoch sweep pytest conformance accuracy layers; do
        [ -f "$RESULTS/$name.log" ] || [ "$name" = env ] || continue
        echo "=== $name"
        case $name in
            env) cat "$RESULTS/env.txt" 2>/dev/null | head -30 ;;
            sweep) grep -E "crossover|error|Error" "$RESULTS/sweep.log" | tail -5 ;;
            pytest) grep -E "passed|failed|FAILED|ERROR|Error" "$RESULTS/pytest.log" | tail -40 ;;
            layers) grep -H '"largest_added"' "$RESULTS"/layers/*.json; tail -5 "$RESULTS/layers.log" ;;
            *) tail -40 "$RESULTS/$name.log" ;;
        esac
    done
} >>"$RESULTS/summary.txt"
pack
cat "$RESULTS/summary.txt"

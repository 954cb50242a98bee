#!/usr/bin/env bash
# The GPU checks of the GPU-speed work as one prepared script, for a session lent a GPU machine.
#
#   1. the CUDA-only tests (GPU augmentation and streamed batches against the CPU);
#   2. benchmarks/gpu_speed.py --compile --workers 1,2,4: the project's epoch, validation and
#      sweep against a bare bf16 loop (ResNet-50, 256 px), what deterministic cuDNN costs, and
#      the default profile's training stage with 1, 2 and 4 seed processes sharing the GPU
#      (bit-identity checked);
#   3. the paper profile end to end on the phantom at 256 px (ImageNet weights cannot be
#      fetched there, so weights=none; bf16, channels_last, 4 seed processes on the GPU). The
#      run is resumable: a second call continues where a timeout stopped it.
#
# Every step has its own time limit, so the script ends within about 9 minutes; its logs and
# the paper run's manifest (GPU, precision, images/s per stage, peak GPU memory) go to $OUT.
# On the device machine (python3 there holds a CUDA PyTorch; nothing to install):
#     device run: command "bash benchmarks/gpu_check.sh", timeout_s 590
# Here, to check the script itself at a tiny size on the CPU (the tests do this):
#     PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh --dry-run
set -uo pipefail
PY=${PYTHON:-python3}
OUT=${OUT:-$(mktemp -d)}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export PRUNECXR_HOME=${PRUNECXR_HOME:-/tmp/prunecxr_gpu_check}
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
mkdir -p "$OUT"

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $OUT/NAME.txt
    local name=$1 limit=$2 t0=$SECONDS
    shift 2
    echo "== $name (limit ${limit} s)"
    timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.txt"
    echo "== $name: exit ${PIPESTATUS[0]} after $((SECONDS - t0)) s"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

paper=(run --profile paper --dataset phantom --set weights=none --set precision=bf16
       --set channels_last=true --workers 4 --quiet)
if [ "$DRY" = 1 ]; then
    step cuda_tests 120 "$PY" -m pytest -q -p no:cacheprovider tests/test_batches.py -k "cuda or gpu_augmentation"
    step gpu_speed 180 "$PY" benchmarks/gpu_speed.py --dry-run --workers 1,2
    paper+=(--set data.n_images=200 --set image_size=32 --set arch=resnet18 --set width=8
            --set population=2 --set max_epochs=1 --set sparsities=0,0.5 --workers 2
            --set threads=1)
    limit=180
else
    step cuda_tests 60 "$PY" -m pytest -q -p no:cacheprovider tests/test_batches.py -k "cuda or gpu_augmentation"
    step gpu_speed 240 "$PY" benchmarks/gpu_speed.py --compile --workers 1,2,4
    paper+=(--set data.n_images=600)
    limit=240
fi
step paper_profile "$limit" "$PY" -m prunecxr "${paper[@]}"
manifest=$(ls -t "$PRUNECXR_HOME"/results/*/manifest.json 2>/dev/null | head -1)
if [ -n "$manifest" ]; then
    cp "$manifest" "$OUT/paper_manifest.json"
    "$PY" - "$manifest" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
c = m["config"]
print(f"paper profile on {m['machine'].get('cuda') or 'cpu'}: {c['arch']} at {c['image_size']} px, "
      f"{c['precision']}, {c['population']} seeds, phantom of {c['data'].get('n_images')} images")
for stage, seconds in m["stages"].items():
    r = m.get("rates", {}).get(stage, {})
    peak = r.get("peak_gpu_bytes")
    print(f"  {stage:6s} {seconds:8.1f} s" + (f"  {r['images_per_s']:10,.0f} img/s" if r else "")
          + (f"  peak GPU {peak / 2**30:.2f} GiB" if peak else ""))
EOF
else
    echo "paper profile: no manifest written"
fi
echo "logs and manifest in $OUT"

#!/usr/bin/env bash
# The benchmark suite on a machine with a GPU (and PyTorch): Lathe's CUDA binary against the
# reference scripts in benches/reference, in one command. Run from the repository root:
#   bash benches/gpu-suite.sh OUT_DIR [gpu|cpu|all|detect|finetune|pipeline]
# gpu: correctness tests, `lathe bench --profile` vs torch, end-to-end Fashion-MNIST vs torch;
# cpu: the same on the machine's CPU; detect: the 1,000/200 generated detection set trained and
# evaluated on the GPU, inference images/s on GPU and CPU; finetune: Fashion-MNIST with the last
# 4 blocks fine-tuned on the GPU; pipeline: Fashion-MNIST time to model with the images resized on
# the GPU against the CPU resize path (LATHE_DEVICE_RESIZE=off) and PyTorch, alternating, cold
# feature cache each time (ROUNDS, default 2).
# Needs .devbin/ from ../shared/scripts/build-cuda.sh (lathe; gpu-tests.gz and detection_data.gz
# for the tests and detect), and the Fashion-MNIST IDX files in data/fmnist-idx
# (scripts/fetch-fashion-mnist.sh downloads them) for gpu, cpu and finetune. Writes
# OUT_DIR/*.json and OUT_DIR/log.txt.
set -uo pipefail
out="${1:?usage: gpu-suite.sh OUT_DIR [gpu|cpu|all|detect|finetune|pipeline]}"; what="${2:-all}"
mkdir -p "$out"
log() { echo ">> $*" | tee -a "$out/log.txt"; }
lathe() { bash .devbin/devrun.sh lathe "$@"; }
py=python3; [ -x /opt/torch/.venv/bin/python ] && py=/opt/torch/.venv/bin/python
weights=assets/backbones/mobilenet_v2.safetensors
{ nvidia-smi -L; lscpu | grep -E 'Model name|^CPU\(s\)'; $py -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)'; } 2>&1 | tee -a "$out/log.txt"
fm=/tmp/fmnist
if [ ! -d "$fm/train" ] && [ "$what" != detect ]; then
  log "exporting Fashion-MNIST to class folders"
  t=$(date +%s.%N); python3 scripts/fashion_mnist_to_folders.py data/fmnist-idx "$fm" >/dev/null; log "export took $(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" "$t" "$(date +%s.%N)") s"
fi
timed() { # name command... : wall time (and peak RSS where GNU time exists) into $out/name.time
  local name=$1; shift
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f '{"wall_secs": %e, "max_rss_kib": %M}' -o "$out/$name.time" "$@"
  else
    local t0; t0=$(date +%s.%N)
    "$@"; local rc=$?
    python3 -c "import sys; print('{\"wall_secs\": %.2f}' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$(date +%s.%N)" > "$out/$name.time"
    return $rc
  fi
}
if [ "$what" = gpu ] || [ "$what" = all ]; then
  if [ -f .devbin/gpu-tests.gz ]; then
    log "GPU correctness tests"
    gunzip -c .devbin/gpu-tests.gz > /tmp/gpu-tests && chmod +x /tmp/gpu-tests
    (source .devbin/devrun.sh; cd engine && /tmp/gpu-tests --nocapture --test-threads 1) 2>&1 | tee "$out/gpu-tests.txt" | tail -20
  fi
  log "lathe bench (cuda)"
  lathe bench --device cuda --json --profile ${SKIP_DECODE:+--no-decode} --images "$fm/test" --count 2000 > "$out/bench-cuda.json" 2>>"$out/log.txt"; cat "$out/bench-cuda.json"
  log "torch reference (cuda)"
  $py benches/reference/mobilenet_v2.py $weights --device cuda > "$out/ref-torch-cuda.json" 2>>"$out/log.txt"; cat "$out/ref-torch-cuda.json"
  if [ -z "${SKIP_DECODE:-}" ]; then  # SKIP_DECODE=1: leave out the decode benchmarks
    log "PIL decode+resize reference"
    $py benches/reference/decode_resize.py --images "$fm/test" --count 2000 > "$out/ref-pil.json" 2>>"$out/log.txt"; cat "$out/ref-pil.json"
    log "lathe decode synthetic jpeg (cpu threads)"
    lathe bench --device cuda --json --count 512 --fine-tune-batch 0 --precision f32 --batches 1 > "$out/bench-decode-jpeg.json" 2>>"$out/log.txt"
    $py benches/reference/decode_resize.py --count 512 > "$out/ref-pil-jpeg.json" 2>>"$out/log.txt"
  fi
  log "end to end: lathe train on Fashion-MNIST, cuda (cold cache)"
  export LATHE_CACHE_DIR=/tmp/lathe-cache
  timed e2e-cuda bash .devbin/devrun.sh lathe train --template image-classifier --data "$fm/train" --test "$fm/test" --device cuda --json --out /tmp/run-cuda > "$out/e2e-cuda.jsonl" 2>>"$out/log.txt"
  tail -3 "$out/e2e-cuda.jsonl"; cat "$out/e2e-cuda.time"
  cp /tmp/run-cuda/report.json "$out/e2e-cuda-report.json" 2>/dev/null
  log "second run (cached features)"
  timed e2e-cuda-cached bash .devbin/devrun.sh lathe train --template image-classifier --data "$fm/train" --test "$fm/test" --device cuda --json --out /tmp/run-cuda2 > "$out/e2e-cuda-cached.jsonl" 2>>"$out/log.txt"
  cat "$out/e2e-cuda-cached.time"
  log "torch end to end (cuda)"
  timed ref-e2e-cuda $py benches/reference/fmnist_e2e.py $weights "$fm/train" "$fm/test" --device cuda > "$out/ref-e2e-cuda.json" 2>>"$out/log.txt"; cat "$out/ref-e2e-cuda.json"
fi
if [ "$what" = cpu ] || [ "$what" = all ]; then
  export LATHE_CACHE_DIR=/tmp/lathe-cache-cpu
  log "lathe bench (cpu)"
  lathe bench --device cpu --json --images "$fm/test" --count 2000 > "$out/bench-cpu.json" 2>>"$out/log.txt"; cat "$out/bench-cpu.json"
  log "torch reference (cpu)"
  $py benches/reference/mobilenet_v2.py $weights --device cpu > "$out/ref-torch-cpu.json" 2>>"$out/log.txt"; cat "$out/ref-torch-cpu.json"
  log "end to end: lathe train on Fashion-MNIST, cpu"
  timed e2e-cpu bash .devbin/devrun.sh lathe train --template image-classifier --data "$fm/train" --test "$fm/test" --device cpu --json --out /tmp/run-cpu > "$out/e2e-cpu.jsonl" 2>>"$out/log.txt"
  tail -3 "$out/e2e-cpu.jsonl"; cat "$out/e2e-cpu.time"
  cp /tmp/run-cpu/report.json "$out/e2e-cpu-report.json" 2>/dev/null
fi
if [ "$what" = detect ]; then
  export LATHE_ASSETS=$PWD/assets LATHE_CACHE_DIR=/tmp/lathe-cache-det
  det=/tmp/detect-bench
  if [ ! -d "$det/train" ]; then
    log "generating the detection set (1000 train / 200 test, 5 classes)"
    gunzip -c .devbin/detection_data.gz > /tmp/detection_data && chmod +x /tmp/detection_data
    /tmp/detection_data "$det" 1000 200 320 7 jpg 2>&1 | tail -2 | tee -a "$out/log.txt"
  fi
  log "train the object detector on cuda (defaults: 416 px, 40 frozen + 10 fine-tuning epochs)"
  (nvidia-smi --query-gpu=memory.used --format=csv,noheader -l 10 > "$out/det-gpu-memory.txt" 2>/dev/null &)
  timed det-train bash .devbin/devrun.sh lathe train --template object-detector --data "$det/train" --test "$det/test" --device cuda --json --seed 1 --out /tmp/det-run ${DETECT_ARGS:-} > "$out/det-train.jsonl" 2>>"$out/log.txt"
  pkill -f "nvidia-smi --query-gpu" 2>/dev/null
  tail -2 "$out/det-train.jsonl"; cat "$out/det-train.time"; echo "GPU memory used (every 10 s): $(tr '\n' ' ' < "$out/det-gpu-memory.txt")"
  cp /tmp/det-run/report.json "$out/det-report.json" 2>/dev/null
  log "evaluate on the test set"
  lathe evaluate /tmp/det-run --data "$det/test" --device cuda --json > "$out/det-eval.json" 2>>"$out/log.txt"; head -c 600 "$out/det-eval.json"; echo
  log "inference images/s, cuda and cpu (200 test images, decode + model + NMS)"
  timed det-predict-cuda bash .devbin/devrun.sh lathe predict /tmp/det-run "$det"/test/*.jpg --device cuda --json > /dev/null 2>>"$out/log.txt"; cat "$out/det-predict-cuda.time"
  timed det-predict-cpu bash .devbin/devrun.sh lathe predict /tmp/det-run "$det"/test/*.jpg --device cpu --json > /dev/null 2>>"$out/log.txt"; cat "$out/det-predict-cpu.time"
fi
if [ "$what" = pipeline ]; then
  if [ -f .devbin/gpu-tests.gz ]; then
    log "GPU test: device resize against the CPU resize"
    gunzip -c .devbin/gpu-tests.gz > /tmp/gpu-tests && chmod +x /tmp/gpu-tests
    (source .devbin/devrun.sh; cd engine && /tmp/gpu-tests --nocapture --test-threads 1 device_resize) 2>&1 | tee "$out/gpu-tests.txt" | tail -12
  fi
  log "warm-up (JIT of the kernels, file cache)"
  LATHE_CACHE_DIR=/tmp/lathe-cache-warm lathe train --template image-classifier --data "$fm/test" --device cuda --json --out /tmp/run-warm > /dev/null 2>>"$out/log.txt"
  for r in $(seq 1 "${ROUNDS:-2}"); do
    for mode in gpu cpu; do
      rm -rf /tmp/lathe-cache-p /tmp/run-p
      log "round $r: lathe, resize on the $mode"
      if [ $mode = cpu ]; then export LATHE_DEVICE_RESIZE=off; else unset LATHE_DEVICE_RESIZE; fi
      LATHE_CACHE_DIR=/tmp/lathe-cache-p timed "e2e-$mode-$r" bash .devbin/devrun.sh lathe train --template image-classifier --data "$fm/train" --test "$fm/test" --device cuda --json --out /tmp/run-p > "$out/e2e-$mode-$r.jsonl" 2>>"$out/log.txt"
      unset LATHE_DEVICE_RESIZE
      cat "$out/e2e-$mode-$r.time"; cp /tmp/run-p/report.json "$out/e2e-$mode-$r-report.json" 2>/dev/null
    done
    log "round $r: torch end to end (cuda)"
    timed "ref-e2e-$r" $py benches/reference/fmnist_e2e.py $weights "$fm/train" "$fm/test" --device cuda > "$out/ref-e2e-$r.json" 2>>"$out/log.txt"; cat "$out/ref-e2e-$r.json" "$out/ref-e2e-$r.time"
  done
fi
if [ "$what" = finetune ]; then
  export LATHE_CACHE_DIR=/tmp/lathe-cache
  log "Fashion-MNIST, head then the last 4 blocks fine-tuned, cuda"
  timed ft-cuda bash .devbin/devrun.sh lathe train --template image-classifier --data "$fm/train" --test "$fm/test" --device cuda --json --out /tmp/run-ft --param fine_tune_blocks=4 --param fine_tune_epochs=${FT_EPOCHS:-3} > "$out/ft-cuda.jsonl" 2>>"$out/log.txt"
  tail -2 "$out/ft-cuda.jsonl"; cat "$out/ft-cuda.time"
  cp /tmp/run-ft/report.json "$out/ft-cuda-report.json" 2>/dev/null
fi
log "done"

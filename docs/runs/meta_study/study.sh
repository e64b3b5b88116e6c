#!/bin/bash
# One study process at a time, one thread, nice 5. Budgets are CPU seconds of the run's process.
set -u
cd /work/main
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
MT="nice -n 5 .venv/bin/meta-train"
R=runs/meta_study2
S=${SIN_CPU:-180}
P=${PUSH_CPU:-300}
B=${BASE_CPU:-240}
log() { echo "$(date -u +%H:%M:%S) $*" >> $R/study.log; }
step() { log "start $1"; shift; /usr/bin/time -f "%e s wall %U s user" "$@" --no-progress >> $R/study.out 2>&1; log "rc=$?"; }
# --- sinusoid
step maml-sin65k $MT maml sinusoid --resume --run-dir runs/meta_study --run-name sinusoid__maml__0 --iterations 65000
step maml-sin $MT maml sinusoid --max-cpu-s $S --run-dir $R --run-name sinusoid__maml
step fomaml-sin $MT maml sinusoid --first-order --max-cpu-s $S --run-dir $R --run-name sinusoid__fomaml
step base-sin $MT baselines sinusoid --max-cpu-s $S --run-dir $R --run-name sinusoid__baselines
step mlstm-sin $MT meta-lstm sinusoid --max-cpu-s $S --run-dir $R --run-name sinusoid__meta-lstm
# --- pusher dynamics
step maml-push $MT maml pusher-dynamics --max-cpu-s $P --run-dir $R --run-name pusher__maml
step base-push $MT baselines pusher-dynamics --max-cpu-s $B --run-dir $R --run-name pusher__baselines
step fomaml-push $MT maml pusher-dynamics --first-order --max-cpu-s $P --run-dir $R --run-name pusher__fomaml
step mlstm-push $MT meta-lstm pusher-dynamics --max-cpu-s $P --run-dir $R --run-name pusher__meta-lstm
log done

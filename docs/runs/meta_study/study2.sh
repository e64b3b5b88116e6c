#!/bin/bash
# Continuation of study.sh with the pusher budgets cut to fit the deadline (one process at a
# time, one thread, nice 5; budgets are CPU seconds of each run's process, --max-cpu-s).
set -u
cd /work/main
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
MT="nice -n 5 .venv/bin/meta-train"
R=runs/meta_study2
S=180; P=180; B=150
log() { echo "$(date -u +%H:%M:%S) $*" >> $R/study.log; }
step() { log "start $1"; shift; /usr/bin/time -f "%e s wall %U s user" "$@" --no-progress >> $R/study.out 2>&1; log "rc=$?"; }
while kill -0 ${WAIT_PID:-0} 2>/dev/null; do sleep 5; done
log "fomaml-sin finished (study.sh driver stopped; continuing in study2.sh)"
step base-sin $MT baselines sinusoid --max-cpu-s $S --run-dir $R --run-name sinusoid__baselines
step mlstm-sin $MT meta-lstm sinusoid --max-cpu-s $S --run-dir $R --run-name sinusoid__meta-lstm
step maml-push $MT maml pusher-dynamics --max-cpu-s $P --run-dir $R --run-name pusher__maml
step base-push $MT baselines pusher-dynamics --max-cpu-s $B --run-dir $R --run-name pusher__baselines
step mlstm-push $MT meta-lstm pusher-dynamics --max-cpu-s $P --run-dir $R --run-name pusher__meta-lstm
step fomaml-push $MT maml pusher-dynamics --first-order --max-cpu-s $P --run-dir $R --run-name pusher__fomaml
log done

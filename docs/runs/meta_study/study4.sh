#!/bin/bash
# What was left of study2.sh / study3.sh once the Meta-LSTM's pusher evaluation turned out to
# need far longer than planned (1,162 CPU s for the whole command): first-order MAML
# on the pusher, then the pusher's MAML evaluated with ten steps at test. The sinusoid
# Meta-LSTM's approach B, Meta-SGD on the pusher and the few-shot benchmark were dropped.
set -u
cd /work/main
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
MT="nice -n 5 .venv/bin/meta-train"
R=runs/meta_study2
log() { echo "$(date -u +%H:%M:%S) $*" >> $R/study.log; }
step() {
  if [ "$(date -u +%H%M)" -ge 1630 ]; then log "skip $1 (deadline)"; return; fi
  log "start $1"; shift; /usr/bin/time -f "%e s wall %U s user" "$@" --no-progress >> $R/study.out 2>&1; log "rc=$?"; }
while kill -0 ${WAIT_PID:-0} 2>/dev/null; do sleep 3; done
log "mlstm-push finished (study2/3 drivers stopped; continuing in study4.sh)"
step fomaml-push $MT maml pusher-dynamics --first-order --max-cpu-s 180 --run-dir $R --run-name pusher__fomaml
rm -rf $R/pusher__maml-eval10 && mkdir $R/pusher__maml-eval10 && cp -r $R/pusher__maml/checkpoints $R/pusher__maml/progress.csv $R/pusher__maml/config.yaml $R/pusher__maml-eval10/
step maml-push-eval10 $MT maml pusher-dynamics --resume --eval-steps 10 --max-cpu-s 180 --run-dir $R --run-name pusher__maml-eval10
log done4

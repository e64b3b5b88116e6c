#!/bin/bash
# The few-shot glyph benchmark, cut down to what is left before the deadline: 5-way 1-shot
# only, 400 training classes (100 kept for validation) and 200 test classes of generated
# glyphs, 300 test episodes, 120 CPU s of meta-training (or pre-training) per method. Each
# step starts only before 16:20 UTC. First a second Meta-LSTM approach on the sinusoid. One process at a time, one thread, nice 5.
set -u
cd /work/main
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
MT="nice -n 5 .venv/bin/meta-train"
R=runs/meta_study2
P=180
F="--glyph-train-classes 400 --glyph-test-classes 200 --eval-episodes 300 --max-cpu-s 120"
log() { echo "$(date -u +%H:%M:%S) $*" >> $R/study.log; }
step() {
  if [ "$(date -u +%H%M)" -ge 1620 ]; then log "skip $1 (deadline)"; return; fi
  log "start $1"; shift; /usr/bin/time -f "%e s wall %U s user" "$@" --no-progress >> $R/study.out 2>&1; log "rc=$?"; }
while kill -0 ${WAIT_PID:-0} 2>/dev/null; do sleep 5; done
# a second Meta-LSTM approach on the sinusoid: the preset's 25 tasks x 10 updates made 97
# meta-iterations in 180 CPU s; 5 tasks x 5 updates, a larger first step and meta step
step mlstm-sin-b $MT meta-lstm sinusoid --meta-batch 5 --updates 5 --input-bias "[-3,-2.5]" --meta-lr 0.003 --log-every 100 --max-cpu-s 180 --run-dir $R --run-name sinusoid__meta-lstm-b
# two more approaches for the pusher's MAML, whose one step of 0.01 lost to fine-tuning (10
# steps of 0.03): the same meta-trained model adapted by ten steps at test (evaluation only, a
# copy of the run resumed past its budget), and Meta-SGD's learned per-parameter step sizes
rm -rf $R/pusher__maml-eval10 && mkdir $R/pusher__maml-eval10 && cp -r $R/pusher__maml/checkpoints $R/pusher__maml/progress.csv $R/pusher__maml/config.yaml $R/pusher__maml-eval10/
step maml-push-eval10 $MT maml pusher-dynamics --resume --eval-steps 10 --max-cpu-s $P --run-dir $R --run-name pusher__maml-eval10
step metasgd-push $MT maml pusher-dynamics --meta-sgd --max-cpu-s $P --run-dir $R --run-name pusher__meta-sgd
step maml-fewshot $MT maml fewshot $F --run-dir $R --run-name fewshot__maml
step base-fewshot $MT baselines fewshot $F --run-dir $R --run-name fewshot__baselines
step mlstm-fewshot $MT meta-lstm fewshot $F --run-dir $R --run-name fewshot__meta-lstm
step fomaml-fewshot $MT maml fewshot --first-order $F --run-dir $R --run-name fewshot__fomaml
log done3

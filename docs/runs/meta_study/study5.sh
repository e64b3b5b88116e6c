#!/bin/bash
# The sinusoid Meta-LSTM's approach B (dropped from study3.sh), run once the pusher was done.
set -u
cd /work/main
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
R=runs/meta_study2
echo "$(date -u +%H:%M:%S) start mlstm-sin-b" >> $R/study.log
/usr/bin/time -f "%e s wall %U s user" nice -n 5 .venv/bin/meta-train meta-lstm sinusoid --meta-batch 5 --updates 5 --input-bias "[-3,-2.5]" --meta-lr 0.003 --log-every 100 --max-cpu-s 180 --run-dir $R --run-name sinusoid__meta-lstm-b --no-progress >> $R/study.out 2>&1
echo "$(date -u +%H:%M:%S) rc=$?" >> $R/study.log

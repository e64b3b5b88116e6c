"""What meta-learned adaptation is compared with, on the same test tasks: a model trained on
all tasks (no adaptation), that model fine-tuned, a nearest-class-mean classifier, ReBAL's
recurrent model conditioned on the history and an oracle given the true dynamics
(``meta-train baselines <task>``); and the comparison of saved runs, task by task
(``meta-train compare-adaptation``)."""

"""recipes/crossfit_epochs.py: the held-out scores it reads from a training log, and its command."""

from __future__ import annotations

from recipes.crossfit_epochs import _without, epoch_accuracies

T = "2026-11-27 21:00:00,000 INFO app.training"
LOG = "\n".join(
    [
        f"{T}.trainer: head warm start: probe train accuracy 0.9878 (18.4 s)",
        f"{T}.trainer: warm start: accuracy 0.9898 macro_f1 0.9754",
        f"{T}.trainer: epoch 1: loss 0.0387, 97 examples/s, 36.3 s accuracy 0.9974 macro_f1 0.99",
        f"{T}.trainer: epoch 2: loss 0.0224, 70 examples/s, 50.2 s accuracy 1.0000 macro_f1 1.0",
        f"{T}.run: trained: 2 epoch(s) of 3520 examples; best epoch 2, eval accuracy 1.0000",
    ]
)


def test_the_warm_start_is_epoch_0_and_the_probes_train_accuracy_is_not_read() -> None:
    assert epoch_accuracies(LOG) == {0: 0.9898, 1: 0.9974, 2: 1.0}
    assert epoch_accuracies("\n".join(LOG.splitlines()[:1])) == {}  # the probe's line alone


def test_a_flag_and_its_value_are_taken_out_and_nothing_else() -> None:
    words = ["train", "--epochs", "4", "--seed", "0", "--out", "x"]
    assert _without(words, "--epochs") == ["train", "--seed", "0", "--out", "x"]
    assert _without(words, "--absent") == words

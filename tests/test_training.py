"""Training loop, evaluation and fine-tuning with distillation."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.nn.utils import parametrize

from autoprune.core.errors import AutopruneError
from autoprune.core.training import TrainConfig, finetune, top1_accuracy, train
from autoprune.workflow.baseline import build_for


def test_training_learns_digits(digits):
    model = build_for("demo", digits)
    before = top1_accuracy(model, digits.x_val, digits.y_val)
    result = train(model, digits, TrainConfig(epochs=3, lr=0.05, batch_size=64))
    assert len(result.history) == 3
    assert result.val_accuracy > 0.8 > before + 0.3
    assert result.history[-1].loss < result.history[0].loss


def test_training_is_deterministic_for_a_seed(digits):
    outs = []
    for _ in range(2):
        torch.manual_seed(123)  # initial weights differ only through the config seed
        model = build_for("demo", digits)
        train(model, digits, TrainConfig(epochs=1, seed=7, batch_size=64))
        outs.append(model(digits.x_val[:8]).detach())
    torch.testing.assert_close(outs[0], outs[1])


def test_finetune_with_teacher_keeps_masked_weights_zero(digits):
    teacher = build_for("demo", digits)
    train(teacher, digits, TrainConfig(epochs=2, batch_size=64))
    student = copy.deepcopy(teacher)
    mask = (torch.rand_like(student.conv2.weight) > 0.5).float()

    class Mask(torch.nn.Module):
        def forward(self, w: torch.Tensor) -> torch.Tensor:
            return w * mask

    parametrize.register_parametrization(student.conv2, "weight", Mask())
    result = finetune(student, digits, epochs=1, lr=0.01, teacher=teacher)
    assert result.val_accuracy > 0.5
    assert torch.all(student.conv2.weight[mask == 0] == 0)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (TrainConfig(epochs=-1), "epochs"),
        (TrainConfig(lr=0.0), "learning rate"),
        (TrainConfig(batch_size=0), "batch size"),
    ],
)
def test_bad_training_settings_are_refused(digits, config, message):
    with pytest.raises(AutopruneError, match=message):
        train(build_for("demo", digits), digits, config)

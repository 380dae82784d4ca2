"""A small real training run (scikit-learn digits as 64-step pixel sequences) that shrinks while learning."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
datasets = pytest.importorskip("sklearn.datasets")

from ssmred_torch import CompreSSM, LRUModel, tolerance  # noqa: E402

pytestmark = pytest.mark.torch


def test_digits_training_shrinks_and_keeps_learning(gen):
    X, y = datasets.load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)[:, :, None]  # (1797, 64, 1): pixels as a sequence
    y = torch.tensor(y)
    perm = torch.randperm(len(X), generator=gen)
    train, test = perm[:1400], perm[1400:]
    model = LRUModel(1, 16, 32, 2, 10, generator=gen)
    opt = torch.optim.AdamW(model.parameters(), lr=4e-3, weight_decay=0.0)
    total = 240
    ctl = CompreSSM(total, mode=tolerance(0.1))
    assert ctl.attempt_steps == (6, 12, 18, 24)
    losses = []
    for step in range(1, total + 1):
        idx = train[torch.randint(0, len(train), (64,), generator=gen)]
        loss = torch.nn.functional.cross_entropy(model(X[idx]), y[idx])
        opt.zero_grad()
        loss.backward()  # `loss` (and its graph) stays alive while the controller resizes parameters
        opt.step()
        losses.append(float(loss.detach()))
        ctl.step(step, model, opt)
    assert [r.step for r in ctl.history] == [6, 12, 18, 24]
    assert all(n < 32 for n in model.state_sizes)
    after_last_reduction = np.mean(losses[24:34])
    assert np.mean(losses[-20:]) < 0.5 * after_last_reduction
    model.eval()
    with torch.no_grad():
        accuracy = float((model(X[test]).argmax(-1) == y[test]).float().mean())
    assert accuracy > 0.6  # chance is 0.1
    assert all(r.seconds < 5.0 for r in ctl.history)

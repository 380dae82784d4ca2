"""The model classes keep their import paths after ``ssmred_torch.models`` became a package."""

from __future__ import annotations

import pickle

import pytest

torch = pytest.importorskip("torch")
import ssmred_torch  # noqa: E402
import ssmred_torch.models  # noqa: E402

pytestmark = pytest.mark.torch

NAMES = ["LRUBlock", "LRUModel", "MambaModel", "S4DModel", "S5Model", "SSMBlock", "SSMClassifier"]


@pytest.mark.parametrize("name", NAMES)
def test_models_are_importable_from_both_paths(name):
    assert sorted(ssmred_torch.models.__all__) == NAMES
    assert getattr(ssmred_torch.models, name) is getattr(ssmred_torch, name)


@pytest.mark.parametrize("name", NAMES)
def test_a_reference_pickled_before_the_split_still_resolves(name):
    # what pickle wrote for these classes while they lived in ssmred_torch/models.py
    old = f"cssmred_torch.models\n{name}\n.".encode()
    assert pickle.loads(old) is getattr(ssmred_torch, name)


def test_a_whole_model_pickled_by_old_reference_loads():
    model = ssmred_torch.LRUModel(1, 4, 6, 2, 3, dtype=torch.float64)
    data = pickle.dumps(model, protocol=0)
    module = type(model).__module__.encode()
    old = data.replace(b"c" + module + b"\nLRUModel\n", b"cssmred_torch.models\nLRUModel\n")
    assert old != data
    back = pickle.loads(old)
    x = torch.randn(2, 5, 1, dtype=torch.float64)
    torch.testing.assert_close(back.eval()(x), model.eval()(x), rtol=0, atol=0)

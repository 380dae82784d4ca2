"""Checkpoints after a reduction: per-layer sizes recorded, weights_only loading, exact resume."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from ssmred_torch import CompreSSM, LRUModel, load, rank, reduce_model, save  # noqa: E402

pytestmark = pytest.mark.torch


def _step(model, opt, x):
    opt.zero_grad()
    loss = model(x).square().mean()
    loss.backward()
    opt.step()
    return loss.detach()


def test_save_load_after_reduction_resumes_exactly(tmp_path, gen):
    model = LRUModel(2, 4, [16, 12], 2, 3, dtype=torch.float64, generator=gen)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.randn(3, 10, 2, dtype=torch.float64, generator=gen)
    _step(model, opt, x)
    ctl = CompreSSM(100, mode=rank([7, 5]), schedule=[1])
    ctl.step(1, model, opt)
    assert model.state_sizes == [7, 5]
    path = tmp_path / "run.pt"
    save(path, model, optimizer=opt, controller=ctl, extra={"step": 1, "note": "after reduction"})
    raw = torch.load(path, weights_only=True)  # plain data only
    assert raw["state_sizes"] == {"blocks.0.ssm": [7], "blocks.1.ssm": [5]}

    fresh = LRUModel(2, 4, 16, 2, 3, dtype=torch.float64)
    fresh_opt = torch.optim.Adam(fresh.parameters(), lr=1e-2)
    fresh_ctl = CompreSSM(100, mode=rank([7, 5]), schedule=[1])
    info = load(path, fresh, optimizer=fresh_opt, controller=fresh_ctl)
    assert info["extra"] == {"step": 1, "note": "after reduction"}
    assert fresh.state_sizes == [7, 5]
    assert not fresh_ctl.step(1, fresh, fresh_opt).records  # the attempt is not repeated
    for (name, p), q in zip(model.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    # one more step in both runs gives the same parameters
    _step(model, opt, x)
    _step(fresh, fresh_opt, x)
    for p, q in zip(model.parameters(), fresh.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)


def test_load_checks_the_architecture(tmp_path, gen):
    model = LRUModel(2, 4, 8, 2, 3, generator=gen)
    reduce_model(model, rank(3))
    path = tmp_path / "m.pt"
    save(path, model)
    with pytest.raises(ValueError, match="do not match"):
        load(path, LRUModel(2, 4, 8, 3, 3))
    fresh = LRUModel(2, 4, 8, 2, 3)
    with pytest.raises(ValueError, match="no optimizer"):
        load(path, fresh, optimizer=torch.optim.Adam(fresh.parameters()))
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an ssmred checkpoint"):
        load(tmp_path / "other.pt", LRUModel(2, 4, 8, 2, 3))


def _data_offset(path):
    """Byte offset and size of the largest tensor's data inside the zip archive torch.save writes."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = path.read_bytes()
    name_len = int.from_bytes(raw[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28 : info.header_offset + 30], "little")
    return info.header_offset + 30 + name_len + extra_len, info.file_size


def test_damaged_checkpoints_are_refused_with_the_cause(tmp_path, gen):
    """Issue 10 item 1: 64 overwritten bytes inside the data loaded silently before."""
    from ssmred_torch import CheckpointError, read_checkpoint

    model = LRUModel(2, 4, 16, 2, 3, dtype=torch.float64, generator=gen)
    path = tmp_path / "last.pt"
    save(path, model)
    start, size = _data_offset(path)
    raw = bytearray(path.read_bytes())
    raw[start + size // 2 : start + size // 2 + 64] = bytes(64)  # 64 zeroed bytes inside a tensor's data
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(bytes(raw))
    assert torch.load(damaged, weights_only=True)["model"]  # torch itself does not notice
    with pytest.raises(CheckpointError, match="checksum of its member"):
        read_checkpoint(damaged)
    (tmp_path / "truncated.pt").write_bytes(path.read_bytes()[:-200])
    with pytest.raises(CheckpointError, match="damaged or truncated"):
        load(tmp_path / "truncated.pt", LRUModel(2, 4, 16, 2, 3, dtype=torch.float64))
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="is empty"):
        read_checkpoint(tmp_path / "empty.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a complete torch archive"):
        read_checkpoint(tmp_path / "text.pt")


def test_nonfinite_states_are_neither_saved_nor_loaded(tmp_path, gen):
    from ssmred_torch import CheckpointError, read_checkpoint

    model = LRUModel(2, 4, 8, 1, 3, dtype=torch.float64, generator=gen)
    good = tmp_path / "good.pt"
    save(good, model)
    before = good.read_bytes()
    with torch.no_grad():
        model.blocks[0].ssm.B_re[0, 0] = float("nan")
    with pytest.raises(CheckpointError, match=r"refusing to save a non-finite state .*blocks\.0\.ssm\.B_re"):
        save(good, model)
    assert good.read_bytes() == before  # the last good checkpoint is untouched
    assert not list(tmp_path.glob(".*tmp"))
    save(tmp_path / "nan.pt", model, allow_nonfinite=True)
    with pytest.raises(CheckpointError, match="non-finite values"):
        read_checkpoint(tmp_path / "nan.pt")
    assert read_checkpoint(tmp_path / "nan.pt", allow_nonfinite=True)["state_sizes"] == {"blocks.0.ssm": [8]}

import pytest
import torch
from torch.utils.data import TensorDataset

from pipeline_lib.artifacts import read_shards, write_shards
from pipeline_lib.methods.cycada_params import CycleGANParams, GeneratorParams, ImageDiscriminatorParams
from pipeline_lib.domains.transforms import to_model_tensor, to_uint8_images
from pipeline_lib.errors import PipelineError
import pipeline_lib.methods.cycada as cycada
from pipeline_lib.methods.cycada import CycleGAN, ImagePool, train_cyclegan, translate
from pipeline_lib.models.lenet import LeNet


def _params(**kw):
    base = dict(generator=GeneratorParams(ngf=4, n_blocks=1), discriminator=ImageDiscriminatorParams(ndf=4),
                batch_size=8, epochs=1, max_steps_per_epoch=2, pool_size=4)
    return CycleGANParams(**{**base, **kw})


def _domains():
    g = torch.Generator().manual_seed(0)
    xs = torch.rand(24, 1, 28, 28, generator=g) * 2 - 1
    ys = torch.randint(0, 10, (24,), generator=g)
    xt = -xs[:16].flip(-1)
    return TensorDataset(xs, ys), TensorDataset(xt)


@pytest.mark.parametrize("semantic", ["frozen", "joint", "off"])
def test_cyclegan_trains_generators_and_leaves_f_s_untouched(tmp_path, semantic):
    torch.manual_seed(0)
    f_s = LeNet()
    before = {k: v.clone() for k, v in f_s.state_dict().items()}
    net = CycleGAN.build(1, _params(semantic_loss=semantic))
    g_before = {k: v.clone() for k, v in net.g_st.state_dict().items()}
    result = train_cyclegan(net, f_s, *_domains(), _params(semantic_loss=semantic), torch.device("cpu"), 0,
                            tmp_path / "c.pt", None)
    row = result.history[0]
    for key in ("loss_gan", "loss_cyc", "loss_d", "acc_d_t", "acc_d_s"):
        assert torch.isfinite(torch.tensor(row[key])), key
    assert ("loss_sem" in row) == (semantic == "frozen")  # joint: random f_S has CE > 1, so its loss stays off
    assert ("classifier_ce" in row) == (semantic == "joint")
    for k, v in f_s.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0, msg=k)
    assert any(not torch.equal(v, g_before[k]) for k, v in net.g_st.state_dict().items())


def test_cyclegan_resumes_from_its_partial_checkpoint(tmp_path, monkeypatch):
    params = _params(epochs=2)

    def fresh():
        torch.manual_seed(0)
        return CycleGAN.build(1, params), LeNet()

    full, f_s = fresh()
    train_cyclegan(full, f_s, *_domains(), params, torch.device("cpu"), 0, tmp_path / "full.pt", "key")
    # kill a second run during epoch 2: only the epoch-1 checkpoint is left behind
    real_step, calls = cycada.CycleGANStep.__call__, {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > params.max_steps_per_epoch:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(cycada.CycleGANStep, "__call__", dying)
    with pytest.raises(KeyboardInterrupt):
        train_cyclegan(*fresh(), *_domains(), params, torch.device("cpu"), 0, tmp_path / "resumed.pt", "key")
    assert (tmp_path / "resumed.pt.partial").is_file()
    monkeypatch.setattr(cycada.CycleGANStep, "__call__", real_step)
    again, f_s = fresh()
    result = train_cyclegan(again, f_s, *_domains(), params, torch.device("cpu"), 0, tmp_path / "resumed.pt", "key")
    assert result.resumed_from_epoch == 1
    for k, v in full.g_st.state_dict().items():
        torch.testing.assert_close(again.g_st.state_dict()[k], v, rtol=0, atol=0, msg=k)


@pytest.mark.parametrize("semantic, update", [("frozen", "generator"), ("joint", "classifier")])
def test_a_nan_batch_stops_the_cyclegan_before_its_first_step(tmp_path, semantic, update):
    torch.manual_seed(0)
    params = _params(semantic_loss=semantic)
    net = CycleGAN.build(1, params)
    before = {name: {k: v.clone() for k, v in m.state_dict().items()} for name, m in net.modules().items()}
    source, target = _domains()
    xs, ys = source.tensors
    poisoned = TensorDataset(torch.full_like(xs, float("nan")), ys)
    with pytest.raises(PipelineError, match=rf"^loss became nan at epoch 1 step 1 \({update} update\): "
                                            r"lower \[segmentation\.\]cycada\.cyclegan\.lr in params\.yaml$"):
        train_cyclegan(net, LeNet(), poisoned, target, params, torch.device("cpu"), 0, tmp_path / "c.pt", None)
    for name, m in net.modules().items():  # checked before the step: no weight was touched
        for k, v in m.state_dict().items():
            torch.testing.assert_close(v, before[name][k], rtol=0, atol=0, msg=f"{name}.{k}")


def test_a_non_finite_discriminator_loss_names_the_discriminator_update(tmp_path, monkeypatch):
    torch.manual_seed(0)
    params = _params()
    net = CycleGAN.build(1, params)
    d_before = {k: v.clone() for k, v in net.d_t.state_dict().items()}
    monkeypatch.setattr(cycada, "discriminator_loss", lambda real, fake, mode: (real + fake).mean() * float("inf"))
    with pytest.raises(PipelineError, match=r"^loss became (-?inf|nan) at epoch 1 step 1 \(discriminator update\): "
                                            r"lower \[segmentation\.\]cycada\.cyclegan\.lr"):
        train_cyclegan(net, LeNet(), *_domains(), params, torch.device("cpu"), 0, tmp_path / "c.pt", None)
    for k, v in net.d_t.state_dict().items():
        torch.testing.assert_close(v, d_before[k], rtol=0, atol=0, msg=k)


def test_cyclegan_step_updates_classifier_then_generators_then_discriminators_once_each(tmp_path, monkeypatch):
    """The shared ``descend`` runs each update exactly once per iteration, in the original order, and a
    normal run is not stopped by the finiteness checks."""
    calls = []
    real_descend = cycada.descend

    def spy(opt, loss, where, hint, watch=None):
        calls.append((where, [id(p) for g in opt.param_groups for p in g["params"]]))
        real_descend(opt, loss, where, hint, watch)

    monkeypatch.setattr(cycada, "descend", spy)
    torch.manual_seed(0)
    params = _params(semantic_loss="joint", max_steps_per_epoch=2)
    net = CycleGAN.build(1, params)
    result = train_cyclegan(net, LeNet(), *_domains(), params, torch.device("cpu"), 0, tmp_path / "c.pt", None)
    assert [w for w, _ in calls] == [f"epoch 1 step {s} ({u} update)" for s in (1, 2)
                                     for u in ("classifier", "generator", "discriminator")]
    g_ids = [id(p) for p in (*net.g_st.parameters(), *net.g_ts.parameters())]
    d_ids = [id(p) for p in (*net.d_s.parameters(), *net.d_t.parameters())]
    assert calls[1][1] == g_ids and calls[2][1] == d_ids  # same parameters, same order as before
    assert all(torch.isfinite(torch.tensor(v)) for v in result.history[0].values())


@pytest.mark.parametrize("factor", [1.0, 2.0])
def test_lambda_gan_st_weights_the_s_to_t_adversarial_term_alone(tmp_path, monkeypatch, factor):
    """The fork's doubled G_A term: the S -> T generator GAN loss (against D_T) is scaled, the T -> S one not."""
    terms = iter([1.0, 10.0] * 4)  # each step: S -> T first, then T -> S
    monkeypatch.setattr(cycada, "gan_loss", lambda scores, real, mode: scores.mean() * 0 + next(terms))
    params = _params(semantic_loss="off", lambda_gan_st=factor, max_steps_per_epoch=1)
    result = train_cyclegan(CycleGAN.build(1, params), LeNet(), *_domains(), params, torch.device("cpu"), 0,
                            tmp_path / "c.pt", None)
    assert result.history[0]["loss_gan"] == pytest.approx(factor * 1.0 + 10.0)


@pytest.mark.parametrize("targets", ["predicted", "labels"])
def test_semantic_targets_labels_gives_the_true_source_labels_s_to_t_only(tmp_path, monkeypatch, targets):
    seen = []
    real = cycada.semantic_consistency_loss

    def spy(labeller, translated, original, given=None):
        seen.append(given)
        return real(labeller, translated, original, given)

    monkeypatch.setattr(cycada, "semantic_consistency_loss", spy)
    params = _params(semantic_targets=targets, max_steps_per_epoch=1)
    source, target = _domains()
    train_cyclegan(CycleGAN.build(1, params), LeNet(), source, target, params, torch.device("cpu"), 0,
                   tmp_path / "c.pt", None)
    s_to_t, t_to_s = seen
    assert t_to_s is None  # T -> S: always the labeller's prediction (target labels are never read)
    if targets == "predicted":
        assert s_to_t is None
    else:  # the batch's own labels: each one is a label of the source set
        assert s_to_t.shape == (8,) and set(s_to_t.tolist()) <= set(source.tensors[1].tolist())


def test_image_pool_returns_history_images():
    pool = ImagePool(2, seed=0)
    first = pool.query(torch.zeros(2, 1, 2, 2))
    assert torch.equal(first, torch.zeros(2, 1, 2, 2))
    mixed = torch.cat([pool.query(torch.ones(2, 1, 2, 2)) for _ in range(10)])
    assert (mixed == 0).any() and (mixed == 1).any()
    assert torch.equal(ImagePool(0, seed=0).query(torch.ones(1)), torch.ones(1))
    restored = ImagePool(2, seed=5)
    restored.load_state_dict(pool.state_dict())
    batch = torch.full((3, 1, 2, 2), 7.0)
    torch.testing.assert_close(restored.query(batch), pool.query(batch))


def test_translated_dataset_round_trip_in_shards(tmp_path):
    torch.manual_seed(0)
    net = CycleGAN.build(3, _params())
    images = torch.rand(25, 3, 32, 32) * 2 - 1
    labels = torch.arange(25) % 10
    translated = translate(net.g_st, images, torch.device("cpu"), batch_size=7)
    assert translated.shape == images.shape and translated.abs().max() <= 1
    stored = to_uint8_images(translated)
    manifest = write_shards(tmp_path / "t", stored, labels.numpy(), shard_size=10, meta={"seed": 3})
    assert manifest["count"] == 25 and [s["count"] for s in manifest["shards"]] == [10, 10, 5]
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == [
        "manifest.json", *(f"shard-0000{i}.{k}.npy" for i in range(3) for k in ("images", "labels"))]
    back, back_labels, meta = read_shards(tmp_path / "t")
    assert meta["seed"] == 3 and back.dtype.name == "uint8"
    assert (back == stored).all() and (back_labels == labels.numpy()).all()
    # uint8 storage costs at most half a grey level
    torch.testing.assert_close(to_model_tensor(back, 3, 32), translated, atol=1 / 127.5, rtol=0)
    shard = tmp_path / "t" / "shard-00001.images.npy"
    shard.write_bytes(shard.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(PipelineError, match="checksum differs"):
        read_shards(tmp_path / "t")

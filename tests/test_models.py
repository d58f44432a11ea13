"""Training loop, adapters and feature hooks."""

import numpy as np
import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from poisonlab import DataError, InvalidParameterError, NotFittedError
from poisonlab.models import (
    MLP,
    ConvNet,
    ModelSpec,
    SklearnClassifier,
    TorchClassifier,
    TrainConfig,
    Vocabulary,
    as_classifier,
    build_model,
    extract_features,
)


def _blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = (rng.normal(size=(n, 1, 6, 6)) + y[:, None, None, None] * 1.5).astype(np.float32)
    return X, y


def _fit(seed, epochs=3, **cfg):
    X, y = _blobs()
    return TorchClassifier(lambda s: build_model("cnn", s, widths=(4, 8), hidden=16),
                           config=TrainConfig(epochs=epochs, batch_size=32, seed=seed, **cfg)).fit(X, y)


def test_same_seed_same_model_and_global_rng_untouched():
    state = torch.random.get_rng_state().clone()
    a, b, c = _fit(0), _fit(0), _fit(1)
    assert torch.equal(torch.random.get_rng_state(), state), "training must not move the global RNG"
    for pa, pb in zip(a.module_.parameters(), b.module_.parameters()):
        assert torch.equal(pa, pb)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.module_.parameters(), c.module_.parameters()))


def test_learns_and_predicts():
    X, y = _blobs()
    clf = _fit(0, epochs=30, lr=0.01)
    P = clf.predict_proba(X)
    assert P.shape == (120, 3) and np.allclose(P.sum(1), 1)
    assert (clf.predict(X) == y).mean() > 0.9


def test_user_module_is_not_trained_in_place():
    X, y = _blobs()
    mod = MLP(36, 3, hidden=(8,))
    before = [p.detach().clone() for p in mod.parameters()]
    TorchClassifier(mod, config=TrainConfig(epochs=2)).fit(X, y)
    assert all(torch.equal(a, b) for a, b in zip(before, mod.parameters()))


def test_early_stopping_keeps_best_epoch():
    X, y = _blobs()
    clf = TorchClassifier(lambda s: build_model("mlp", s, hidden=(16,)), validation_fraction=0.25,
                          config=TrainConfig(epochs=40, lr=0.05, patience=2)).fit(X, y)
    h = clf.history_
    assert len(h.val_accuracy) < 40 and h.stopped_early
    assert h.val_accuracy[h.best_epoch - 1] == max(h.val_accuracy)
    with pytest.raises(InvalidParameterError, match="needs validation data"):
        TorchClassifier(MLP(36, 3), config=TrainConfig(patience=2)).fit(X, y)


def test_callback_reports_every_batch_and_epoch():
    X, y = _blobs()
    events = []
    TorchClassifier(MLP(36, 3, hidden=(4,)), config=TrainConfig(epochs=2, batch_size=50)).fit(
        X, y, callback=lambda e, info: events.append(e))
    assert events.count("batch") == 6 and events.count("epoch") == 2


@pytest.mark.parametrize("cfg, msg", [({"epochs": 0}, "epochs must be in"), ({"lr": -1.0}, "lr must be in"),
                                      ({"optimizer": "rmsprop"}, "optimizer must be one of")])
def test_bad_config(cfg, msg):
    X, y = _blobs()
    with pytest.raises(InvalidParameterError, match=msg):
        TorchClassifier(MLP(36, 3), config=TrainConfig(**cfg)).fit(X, y)


def test_features_by_named_layer_and_streaming(tmp_path):
    X, y = _blobs()
    clf = _fit(0)
    F = clf.embed(X)
    assert F.shape == (120, 16)
    conv = clf.embed(X, layer="conv2")
    assert conv.shape == (120, 8 * 3 * 3)  # conv2 sees the pooled 3x3 map
    out = np.lib.format.open_memmap(tmp_path / "f.npy", mode="w+", dtype=np.float32, shape=(120, 16))
    extract_features(clf.module_, X, "embedding", batch_size=7, out=out)
    assert np.allclose(np.asarray(out), F)
    with pytest.raises(InvalidParameterError, match="layer 'conv9' does not exist"):
        clf.embed(X, layer="conv9")


def test_wrong_input_shape_and_unfitted():
    clf = _fit(0)
    with pytest.raises(DataError, match="do not fit the model"):
        clf.predict(np.zeros((2, 3, 6, 6), np.float32))
    with pytest.raises(NotFittedError):
        TorchClassifier(MLP(4, 2)).predict(np.zeros((2, 4)))


def test_convnet_any_shape():
    m = ConvNet((1, 32, 97), 10, widths=(8, 16))
    assert m(torch.zeros(2, 1, 32, 97)).shape == (2, 10)
    with pytest.raises(InvalidParameterError, match="too small"):
        ConvNet((1, 2, 2), 3, widths=(4, 4, 4))
    with pytest.raises(InvalidParameterError, match="unknown architecture"):
        build_model("resnet", ModelSpec((1, 8, 8), 10))


def test_text_model_with_vocabulary():
    texts = np.array(["free prize now", "win cash free", "see you at lunch", "call me later"] * 20, dtype=object)
    y = np.array([1, 1, 0, 0] * 20)
    clf = TorchClassifier(lambda s: build_model("text-bag", s, embed_dim=8, hidden=8),
                          vocabulary=Vocabulary(max_length=8), config=TrainConfig(epochs=20, lr=0.05)).fit(texts, y)
    assert (clf.predict(np.array(["free cash prize", "lunch later"], dtype=object)) == [1, 0]).all()
    v = Vocabulary().fit(["b a a", "c"])
    assert v.tokens_ == ("a", "b", "c") and v.transform(["a zzz"]).tolist()[0][:3] == [2, 1, 0]
    with pytest.raises(DataError, match="must all be str"):
        v.transform(["ok", 3])


def test_text_cnn_ignores_padding_and_pools_over_time():
    torch.manual_seed(0)
    m = build_model("text-cnn", ModelSpec((6,), 2, vocab_size=20)).eval()
    short = torch.tensor([[5, 6, 7, 0, 0, 0]])
    longer = torch.tensor([[5, 6, 7, 0, 0, 0, 0, 0, 0, 0]])
    with torch.no_grad():
        assert torch.allclose(m(short), m(longer), atol=1e-6)  # padding never enters the pooling
    with pytest.raises(InvalidParameterError, match="needs a vocabulary"):
        build_model("text-cnn", ModelSpec((6,), 2))


def test_sklearn_adapter_and_as_classifier():
    texts = ["free prize", "cash win", "hello friend", "see you"] * 5
    y = np.array([1, 1, 0, 0] * 5)
    clf = SklearnClassifier(make_pipeline(TfidfVectorizer(), LogisticRegression())).fit(texts, y)
    assert clf.predict_proba(texts).shape == (20, 2)
    assert clf.embed(texts).shape[0] == 20
    wrapped = as_classifier(LogisticRegression().fit(np.eye(4), [0, 1, 0, 1]))
    assert wrapped.predict_proba(np.eye(4)).shape == (4, 2)
    with pytest.raises(InvalidParameterError, match="cannot use"):
        as_classifier(object())


@pytest.mark.parametrize("arch, shape", [("strip-mnist-cnn", (1, 28, 28)), ("cnn", (1, 8, 8)),
                                         ("cifar-cnn", (3, 32, 32))])
def test_every_input_pixel_is_seen(arch, shape):
    """A border trigger must reach the output: no pixel may fall outside every receptive field
    (the bottom-right 3x3 square of BadNets lives in the last rows and columns)."""
    model = build_model(arch, ModelSpec(shape, 10))
    x = torch.rand(1, *shape, requires_grad=True)
    model(x).sum().backward()
    seen = x.grad.abs().sum(dim=1)[0] > 0
    assert seen[-3:, -3:].all() and seen[:3, :3].all()


def test_adversarial_training_buys_robustness_and_checks_its_parameters():
    from poisonlab.models.gradients import pgd
    from poisonlab.models.robust import AdversarialTraining

    # feature 0 separates the classes by more than 2 eps (robust but noisy); features 1-59 each
    # by less than eps, together very reliably (non-robust): a standard model leans on them,
    # an adversarially trained one cannot
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    X = 0.5 + rng.normal(0, 0.03, (2000, 60))
    X[:, 0] = 0.5 + rng.normal(0, 0.1, 2000) + np.where(y == 1, 0.25, -0.25)
    X[:, 1:] += np.where(y == 1, 0.04, -0.04)[:, None]
    X = X.clip(0, 1).astype(np.float32)
    cfg = TrainConfig(epochs=8, lr=0.01, seed=0)
    mlp = lambda s: build_model("mlp", s, hidden=(32,))
    plain = TorchClassifier(mlp, config=cfg).fit(X, y)
    robust = TorchClassifier(mlp, config=cfg).fit(X, y, batch_transform=AdversarialTraining(eps=0.1, steps=5, ramp=10))
    attacked = lambda clf: np.mean(clf.predict(pgd(clf.module_, X[:500], y[:500], eps=0.1, steps=20)) == y[:500])
    assert np.mean(robust.predict(X) == y) > 0.98
    assert attacked(robust) > 0.9 > 0.75 > attacked(plain)  # measured 0.94 and 0.68
    with pytest.raises(InvalidParameterError, match="eps"):
        AdversarialTraining(eps=0)
    with pytest.raises(InvalidParameterError, match="norm"):
        AdversarialTraining(eps=0.1, norm="l3")


def test_logmel_front_end_matches_the_numpy_features():
    from poisonlab.data.audio import log_mel_spectrogram
    from poisonlab.models.architectures import LogMel

    w = np.random.default_rng(0).normal(0, 0.1, (3, 4000)).astype(np.float32)
    ours = LogMel(8000)(torch.tensor(w)).numpy()
    assert ours.shape == (3, 1, 32, 47)
    assert np.allclose(ours, log_mel_spectrogram(w, 8000)[:, None], atol=1e-4)
    m = build_model("audio-wave-cnn", ModelSpec((4000,), 10))
    assert m(torch.tensor(w)).shape == (3, 10)
    with pytest.raises(InvalidParameterError, match="shorter than"):
        build_model("audio-wave-cnn", ModelSpec((100,), 10))


def test_inference_copy_is_frozen_channels_last_and_matches():
    torch.manual_seed(0)
    module = build_model("cnn", ModelSpec((3, 8, 8), 3), widths=(8, 16), hidden=16).eval()
    X = np.random.default_rng(0).random((7, 3, 8, 8)).astype(np.float32)
    clf = TorchClassifier.from_trained(module, n_classes=3)
    fast = clf.inference_copy()
    assert np.allclose(fast.logits(X), clf.logits(X), atol=1e-5)
    assert fast.module_ is not module and all(p.is_contiguous() for p in module.parameters())
    conv = [p for p in fast.module_.parameters() if p.dim() == 4]
    assert conv and all(p.is_contiguous(memory_format=torch.channels_last) for p in conv)
    with torch.no_grad():  # later changes to the original do not reach the copy
        next(module.parameters()).add_(1.0)
    assert not np.allclose(fast.logits(X), clf.logits(X), atol=1e-5)


def test_pgd_mask_confines_the_perturbation():
    """Pixels where the mask is 0 are never changed, in L-inf and L2; the rest still move."""
    from poisonlab.models.gradients import pgd

    model = build_model("cnn", ModelSpec((1, 8, 8), 3))
    X = np.random.default_rng(0).uniform(0.2, 0.8, (6, 1, 8, 8)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    mask = np.zeros_like(X)
    mask[..., :4, :] = 1
    for norm, eps in (("linf", 0.1), ("l2", 0.5)):
        adv = pgd(model, X, y, eps=eps, norm=norm, steps=10, seed=0, mask=mask)
        assert np.array_equal(adv[..., 4:, :], X[..., 4:, :])
        assert np.abs(adv - X)[..., :4, :].max() > 0

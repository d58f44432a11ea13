"""Reference text pipelines (R10's classifiers) as one public call."""

import numpy as np
import pytest

from poisonlab import InvalidParameterError
from poisonlab.models import SklearnClassifier, TextBag, TorchClassifier, text_pipeline
from poisonlab.models.architectures import TextCNN

TEXTS = np.array(["free prize now", "see you at lunch", "win a free prize today", "lunch at noon?",
                  "claim your prize", "call me after lunch"] * 6)
Y = np.array([1, 0, 1, 0, 1, 0] * 6)


def test_tfidf_pipeline_fits_with_default_and_given_settings():
    clf = text_pipeline("tfidf-logreg", seed=0)
    assert isinstance(clf, SklearnClassifier)
    logreg = clf.estimator.steps[-1][1]
    assert logreg.C == 100.0 and clf.estimator.steps[0][1].min_df == 1
    chosen = {"min_df": 2, "C": 10.0, "cv_accuracy": 0.97}  # select_tfidf's output, as R10 passes it
    clf = text_pipeline("tfidf-logreg", seed=0, tfidf=chosen).fit(TEXTS, Y)
    assert clf.estimator_.steps[-1][1].C == 10.0
    assert clf.predict(np.array(["free prize", "lunch"])).tolist() == [1, 0]


@pytest.mark.parametrize("name, cls", [("text-bag", TextBag), ("text-cnn", TextCNN)])
def test_torch_pipelines_build_their_model_over_a_fitted_vocabulary(name, cls):
    clf = text_pipeline(name, seed=3, epochs=2)
    assert isinstance(clf, TorchClassifier) and clf.config.seed == 3 and clf.config.epochs == 2
    assert clf.config.batch_size == 64 and clf.config.lr == 3e-3
    clf.fit(TEXTS, Y)
    assert isinstance(clf.module_, cls)
    table = clf.module_.bag if name == "text-bag" else clf.module_.words
    assert table.num_embeddings == clf.vocabulary_.vocab_size == len(clf.vocabulary_.tokens_) + 2
    assert clf.predict_proba(TEXTS[:3]).shape == (3, 2)


def test_same_seed_same_text_model():
    a = text_pipeline("text-bag", seed=1, epochs=1).fit(TEXTS, Y)
    b = text_pipeline("text-bag", seed=1, epochs=1).fit(TEXTS, Y)
    assert np.array_equal(a.predict_proba(TEXTS), b.predict_proba(TEXTS))


@pytest.mark.parametrize("kwargs, msg", [
    ({"name": "bert"}, "name must be one of"),
    ({"name": "text-bag", "seed": -1}, "seed must be in"),
    ({"name": "text-bag", "epochs": 0}, "epochs must be in"),
    ({"name": "tfidf-logreg", "tfidf": {"min_df": 1}}, "'C' is missing"),
])
def test_bad_arguments(kwargs, msg):
    kwargs = {"seed": 0, **kwargs}
    name = kwargs.pop("name")
    with pytest.raises(InvalidParameterError, match=msg):
        text_pipeline(name, **kwargs)


def test_reproduce_text_uses_the_models_pipeline():
    from poisonlab.reproductions import r10_text_backdoors

    assert r10_text_backdoors.text_pipeline is text_pipeline

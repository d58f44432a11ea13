"""Reference pipelines: ready-to-fit classifiers with the settings the reproductions use.

Text (R10): TF-IDF + logistic regression (scikit-learn), the torch bag-of-words model
(:class:`~poisonlab.models.architectures.TextBag`, a mean of word embeddings, Joulin et al. 2017)
and the torch sentence CNN (:class:`~poisonlab.models.architectures.TextCNN`, Kim 2014), each
torch model over a :class:`~poisonlab.models.text.Vocabulary` fitted on its training texts.
Every call returns a new, unfitted classifier with the same protocol (``fit``, ``predict``,
``predict_proba``, ``embed``), so attacks and defenses treat all three alike.
"""

from __future__ import annotations

import numbers
from typing import Any

from .._validation import check_option, check_scalar
from ..exceptions import InvalidParameterError

#: The reference text pipelines by name.
TEXT_PIPELINES = ("tfidf-logreg", "text-bag", "text-cnn")

#: TF-IDF + logistic regression settings used when none are given (R10 picks them per seed by
#: cross-validation: ``poisonlab.reproductions.r10_text_backdoors.select_tfidf``).
DEFAULT_TFIDF = {"min_df": 1, "C": 100.0}


def tfidf_pipeline(*, min_df: int = 1, C: float = 100.0) -> Any:
    """Sublinear TF-IDF (``min_df``) then logistic regression (``C``, up to 3000 iterations):
    an unfitted scikit-learn ``Pipeline`` over raw texts.

    Examples
    --------
    >>> pipe = tfidf_pipeline(min_df=1, C=10.0)
    >>> [name for name, _ in pipe.steps]
    ['tfidfvectorizer', 'logisticregression']
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    check_scalar(min_df, "min_df", numbers.Integral, low=1)
    check_scalar(C, "C", numbers.Real, low=0.0, low_inclusive=False)
    return make_pipeline(TfidfVectorizer(sublinear_tf=True, min_df=min_df),
                         LogisticRegression(C=C, max_iter=3000))


def text_pipeline(name: str, *, seed: int, epochs: int = 10, tfidf: dict | None = None) -> Any:
    """A reference text classifier, unfitted.

    Parameters
    ----------
    name : {"tfidf-logreg", "text-bag", "text-cnn"}
        TF-IDF + logistic regression (a :class:`~poisonlab.models.SklearnClassifier`), or a
        :class:`~poisonlab.models.TorchClassifier` of the bag-of-words model or the sentence
        CNN over a vocabulary fitted on the training texts at ``fit``.
    seed : int
        The torch models' ``TrainConfig.seed`` (initialisation and shuffling). The linear
        pipeline is deterministic and ignores it.
    epochs : int, default=10
        Torch models: epochs of Adam (lr 3e-3, batches of 64).
    tfidf : dict, optional
        ``min_df`` and ``C`` of the linear pipeline (default :data:`DEFAULT_TFIDF`); other keys
        (``select_tfidf``'s ``cv_accuracy``) are ignored.

    Returns
    -------
    SklearnClassifier or TorchClassifier

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.models.pipelines import text_pipeline
    >>> texts = np.array(["free prize now", "see you at lunch", "win a free prize", "lunch at noon?"] * 5)
    >>> y = np.array([1, 0, 1, 0] * 5)
    >>> clf = text_pipeline("tfidf-logreg", seed=0).fit(texts, y)
    >>> clf.predict(np.array(["a free prize", "lunch today"])).tolist()
    [1, 0]
    """
    from .adapters import SklearnClassifier, TorchClassifier
    from .architectures import model_factory
    from .text import Vocabulary
    from .training import TrainConfig

    check_option(name, "name", TEXT_PIPELINES)
    check_scalar(seed, "seed", numbers.Integral, low=0)
    check_scalar(epochs, "epochs", numbers.Integral, low=1)
    if name == "tfidf-logreg":
        params = DEFAULT_TFIDF if tfidf is None else tfidf
        missing = [k for k in DEFAULT_TFIDF if k not in params]
        if missing:
            raise InvalidParameterError(f"tfidf must give min_df and C; {missing[0]!r} is missing")
        return SklearnClassifier(tfidf_pipeline(min_df=params["min_df"], C=params["C"]))
    return TorchClassifier(model_factory(name, "text"), vocabulary=Vocabulary(),
                           config=TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, seed=seed))

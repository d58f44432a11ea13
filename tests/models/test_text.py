"""The vocabulary and a text model trained over it."""

import numpy as np
import pytest

from poisonlab import DataError
from poisonlab.models import TorchClassifier, TrainConfig, Vocabulary, build_model


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

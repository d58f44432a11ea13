"""Fine-pruning: a pruned copy within the accuracy budget."""

from poisonlab.defenses.model import fine_prune
from poisonlab.evaluation.metrics import attack_success_rate


def test_fine_pruning_prunes_a_copy_within_the_accuracy_budget(backdoored_digits):
    s, atk, clf = backdoored_digits
    keep = s.test.y != 3
    res = fine_prune(clf, s.train.X, s.train.y, X_val=s.test.X, y_val=s.test.y, max_accuracy_drop=0.04,
                     asr_fn=lambda m: attack_success_rate(s.test.y[keep], m.predict(atk.apply_trigger(s.test.X[keep])), 3))
    assert res.layer == "conv2" and 0 < len(res.pruned) < res.n_channels
    assert all(res.curve[0]["clean_accuracy"] - r["clean_accuracy"] <= 0.04 for r in res.curve)
    conv = res.model.module_.conv2
    assert conv.weight[res.pruned].abs().sum() == 0, "pruned channels stay zero after fine-tuning"
    assert clf.module_.conv2.weight[res.pruned].abs().sum() > 0, "the user's model is not pruned"
    assert "attack_success_rate" in res.final

from worker.datasets.balance import LabelCounter


def test_dominant_label_warns():
    counter = LabelCounter()
    for i in range(100):
        counter.add("positive" if i < 85 else ("negative" if i < 95 else "neutral"))
    report = counter.report()
    assert report["classification_like"] is True
    assert report["labels"] == {"positive": 85, "negative": 10, "neutral": 5}
    assert report["top_label"] == "positive" and report["top_share"] == 0.85
    assert "85%" in report["warning"]


def test_balanced_labels_do_not_warn():
    counter = LabelCounter()
    for i in range(40):
        counter.add(" yes " if i % 2 else "no")
    report = counter.report()
    assert report["labels"] == {"yes": 20, "no": 20}
    assert "warning" not in report


def test_free_text_is_not_classification_like():
    counter = LabelCounter()
    for i in range(50):
        counter.add(f"Answer number {i}: the capital is somewhere")
    assert counter.report() == {"classification_like": False}


def test_long_replies_are_not_labels():
    counter = LabelCounter()
    for _ in range(30):
        counter.add("x" * 100)
    assert counter.report() == {"classification_like": False}


def test_merge_of_parts_equals_whole():
    a, b, whole = LabelCounter(), LabelCounter(), LabelCounter()
    for i in range(30):
        label = "spam" if i % 3 else "ham"
        (a if i < 15 else b).add(label)
        whole.add(label)
    a.merge(b)
    assert a.report() == whole.report()

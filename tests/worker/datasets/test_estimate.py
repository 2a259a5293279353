from worker.datasets.estimate import training_estimate


def test_estimate_multiplies_by_epochs_and_divides_by_throughput():
    estimate = training_estimate(10_000, 4_000, n_epochs=3, tokens_per_second=100.0)
    assert estimate["total_training_tokens"] == 30_000
    assert estimate["trainable_tokens"] == 12_000
    assert estimate["expected_duration_seconds"] == 300
    assert estimate["expected_duration"] == "5 min"


def test_estimate_durations_read_naturally():
    assert training_estimate(100, 50, 1, tokens_per_second=10.0)["expected_duration"] == "10 s"
    assert (
        training_estimate(36_000 * 25, 1, 1, tokens_per_second=10.0)["expected_duration"]
        == "1 d 1 h"
    )
    assert (
        training_estimate(36_000 + 600 * 3, 1, 1, tokens_per_second=10.0)["expected_duration"]
        == "1 h 3 min"
    )

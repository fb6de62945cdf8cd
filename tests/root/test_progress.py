"""The training progress bar's text (asymcli/progress.py)."""

from asymcli.progress import step_info


def test_step_info_shows_the_test_accuracy_only_when_measured():
    row = {"reward_mean": 0.5, "entropy": 0.04321}
    assert step_info(row) == "reward 0.500  entropy 0.043"
    assert step_info({**row, "eval_greedy_acc": float("nan")}) == "reward 0.500  entropy 0.043"
    assert step_info({**row, "eval_greedy_acc": 0.75}) == "reward 0.500  entropy 0.043  test acc 0.750"

"""The cells of ``expresso runs``: long settings shortened without making two look alike; a failed run's reason on one line."""

from __future__ import annotations

from expresso.commands.runs import distinct_short, failure_reason
from expresso.commands.session import short_message


def test_long_values_are_shortened_in_the_middle_keeping_both_ends():
    values = ["checkpoints/pretrained/encoder-epoch-001.pt", "checkpoints/pretrained/encoder-epoch-002.pt", "short"]
    assert distinct_short(values, width=20) == ["checkpoi...ch-001.pt", "checkpoi...ch-002.pt", "short"]  # 8 + ... + 9


def test_a_column_whose_shortened_values_would_look_alike_is_shown_in_full():
    values = ["/data/a/one/x.npy", "/data/a/two/x.npy", "/data/a/one/x.npy"]  # differ only in the middle
    assert distinct_short(values, width=12) == values


def test_equal_values_do_not_count_as_looking_alike():
    values = ["/data/a/one/x.npy", "/data/a/one/x.npy", "-"]
    assert distinct_short(values, width=12) == ["/dat...x.npy", "/dat...x.npy", "-"]


def test_the_reason_is_the_type_and_the_messages_first_line_on_single_spaces():
    record = {"error": {"type": "RuntimeError", "message": "shapes  (2, 3)\tand (4,) differ\nsecond line"}}
    assert failure_reason(record) == "RuntimeError: shapes (2, 3) and (4,) differ"


def test_a_long_reason_is_cut_to_60_characters():
    reason = failure_reason({"error": {"type": "ValueError", "message": "x" * 100}})
    assert reason == "ValueError: " + "x" * 45 + "..." and len(reason) == 60


def test_a_reason_without_a_message_is_the_type_and_a_malformed_error_is_none():
    assert failure_reason({"error": {"type": "StopIteration", "message": ""}}) == "StopIteration"
    assert failure_reason({"error": {"type": 5, "message": "m"}}) is None
    assert failure_reason({}) is None


def test_run_json_keeps_the_first_ten_lines_and_at_most_1000_characters_of_a_message():
    many_lines = ValueError("\n".join(f"line {i}" for i in range(12)))
    assert short_message(many_lines) == "\n".join(f"line {i}" for i in range(10)) + " ..."
    assert short_message(ValueError("y" * 2000)) == "y" * 996 + " ..."
    assert short_message(KeyError("val/accuracy")) == "'val/accuracy'"

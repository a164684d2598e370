"""S5 report: the tagger's multi-label confusion counts, checked against hand-counted cases."""

from __future__ import annotations

import numpy as np

from seldflow.s5.report import confusion_matrix, summary_markdown
from seldflow.s5.vocabulary import LABELS

NONE_ROW = MISSED_COLUMN = len(LABELS)


def idx(label: str) -> int:
    return LABELS.index(label)


def test_correct_labels_count_on_the_diagonal() -> None:
    counts = confusion_matrix({"a": ("Speech", "Blender")}, {"a": ("Blender", "Speech")})
    expected = np.zeros_like(counts)
    expected[idx("Speech"), idx("Speech")] = 1
    expected[idx("Blender"), idx("Blender")] = 1
    np.testing.assert_array_equal(counts, expected)


def test_a_substituted_class_counts_against_the_missed_reference() -> None:
    # Reference {Cough, Dishes}; the tagger returned {Cough, Typing}: Typing stands where Dishes was missed.
    counts = confusion_matrix({"a": ("Cough", "Typing")}, {"a": ("Cough", "Dishes")})
    assert counts[idx("Cough"), idx("Cough")] == 1
    assert counts[idx("Dishes"), idx("Typing")] == 1
    assert counts.sum() == 2


def test_an_extra_class_without_a_miss_goes_to_the_none_row() -> None:
    counts = confusion_matrix({"a": ("Cough", "Typing")}, {"a": ("Cough",)})
    assert counts[NONE_ROW, idx("Typing")] == 1
    assert counts[idx("Cough"), idx("Cough")] == 1
    assert counts.sum() == 2


def test_a_missed_class_without_a_substitute_goes_to_the_missed_column() -> None:
    counts = confusion_matrix({"a": ("Cough",)}, {"a": ("Cough", "Pour")})
    assert counts[idx("Pour"), MISSED_COLUMN] == 1
    # A soundscape the tagger never produced a row for has every reference class missed.
    counts = confusion_matrix({}, {"b": ("Pour",)})
    assert counts[idx("Pour"), MISSED_COLUMN] == 1
    assert counts.sum() == 1


def test_summary_lists_both_label_sources() -> None:
    text = summary_markdown(
        {"tagger": {"CA-SDRi": 5.25, "label_accuracy": 0.625}, "oracle": {"CA-SDRi": 7.5, "label_accuracy": 1.0}}
    )
    assert "| tagger | 5.25 | 0.625 |" in text
    assert "| oracle | 7.50 | 1.000 |" in text

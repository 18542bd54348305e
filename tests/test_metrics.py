import pytest

from docsprint.eval.metrics import anls, f1_from_counts, match_counts, normalize


def test_normalize_strips_lowercases_and_collapses_whitespace():
    assert normalize("  Hello \n  WORLD\t ") == "hello world"


@pytest.mark.parametrize(
    ("pred", "gold", "expected"),
    [
        ("9.00", "9.00", 1.0),
        ("  TOTAL  Due ", "total due", 1.0),  # normalisation
        ("RM9.00", "9.00", 1 - 2 / 6),  # 2 edits over max length 6
        ("9.0", "9.00", 1 - 1 / 4),
        ("abc", "xyz", 0.0),  # 1 - 3/3 = 0
        ("abcd", "abxy", 0.5),  # exactly the threshold: kept
        ("abcde", "abxyz", 0.0),  # 1 - 3/5 = 0.4 < 0.5
        (None, "9.00", 0.0),  # null counts as the empty string
        (None, None, 1.0),
        ("", None, 1.0),
        (["a b"], "A  B", 1.0),
    ],
)
def test_anls_hand_computed(pred, gold, expected):
    assert anls(pred, gold) == pytest.approx(expected)


def test_field_f1_counts_exact_matches_after_normalisation():
    assert match_counts("Foo  Bar", "foo bar") == (1, 1, 1)
    assert match_counts(None, "x") == (0, 0, 1)
    assert match_counts("x", None) == (0, 1, 0)
    # lists are multisets: one "1" matched of two gold "1"s
    assert match_counts(["1", "2", "3"], ["1", "1", "2"]) == (2, 3, 3)


def test_f1_from_counts():
    # precision 2/4, recall 2/2 -> F1 = 2 * 0.5 * 1 / 1.5
    assert f1_from_counts(2, 4, 2) == pytest.approx(2 / 3)
    assert f1_from_counts(0, 0, 3) == 0.0

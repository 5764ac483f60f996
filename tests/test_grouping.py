"""How a batch is chosen from the waiting rows (app/grouping.py): pure arithmetic on lengths."""

from hypothesis import given
from hypothesis import strategies as st

from app.grouping import group


def padding_share(lengths: list[int]) -> float:
    return 1.0 - sum(lengths) / (max(lengths) * len(lengths))


def test_the_oldest_row_leads_and_the_closest_lengths_join() -> None:
    lengths = [20, 40, 21, 19, 60, 20]
    picked = group(lengths, max_rows=4, max_tokens=10_000, max_padding=1.0)
    assert picked[0] == 0
    assert sorted(lengths[i] for i in picked) == [19, 20, 20, 21]


def test_without_a_budget_a_batch_fills_up_whatever_the_padding() -> None:
    lengths = [10, 100, 10, 100]
    assert sorted(group(lengths, max_rows=4, max_tokens=10_000, max_padding=1.0)) == [0, 1, 2, 3]


def test_past_a_quarter_of_the_rows_a_row_that_would_pad_too_much_waits() -> None:
    # 8 rows of max 32: the first 8 join whatever their length, then only rows that keep the
    # padding within 2 % (here: length 40 exactly) join.
    lengths = [40] * 6 + [39, 38] + [40] * 10 + [20] * 10
    picked = group(lengths, max_rows=32, max_tokens=10_000, max_padding=0.02)
    chosen = [lengths[i] for i in picked]
    assert sorted(chosen) == sorted([40] * 16 + [39, 38])
    assert padding_share(chosen) <= 0.02


def test_a_batch_past_its_budget_still_takes_rows_that_do_not_make_it_worse() -> None:
    # The 2 unbudgeted rows (a quarter of 8) pad 10 %; a second 25 lowers that, a 12 would not.
    lengths = [20, 25, 25, 12]
    picked = group(lengths, max_rows=8, max_tokens=10_000, max_padding=0.0)
    assert sorted(lengths[i] for i in picked) == [20, 25, 25]


def test_the_token_limit_skips_rows_that_would_pass_it() -> None:
    lengths = [10, 11, 100, 12]
    picked = group(lengths, max_rows=4, max_tokens=40, max_padding=1.0)
    assert sorted(lengths[i] for i in picked) == [10, 11, 12]


@given(
    lengths=st.lists(st.integers(1, 300), min_size=1, max_size=80),
    max_rows=st.integers(1, 40),
    max_tokens=st.integers(1, 5000),
    max_padding=st.sampled_from([0.0, 0.02, 0.1, 1.0]),
)
def test_every_batch_keeps_its_limits(
    lengths: list[int], max_rows: int, max_tokens: int, max_padding: float
) -> None:
    picked = group(lengths, max_rows, max_tokens, max_padding)
    assert picked[0] == 0, "the oldest row is always taken: nothing starves"
    assert len(picked) == len(set(picked)) <= max_rows
    chosen = [lengths[i] for i in picked]
    assert len(chosen) == 1 or max(chosen) * len(chosen) <= max_tokens
    if len(chosen) > max(1, max_rows // 4):
        # past the unbudgeted rows, padding stays in budget unless the first rows passed it
        first = [lengths[i] for i in picked[: max(1, max_rows // 4)]]
        assert padding_share(chosen) <= max(max_padding, padding_share(first)) + 1e-9

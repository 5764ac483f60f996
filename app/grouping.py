"""How a batch is formed from the waiting rows: similar lengths around the oldest row.

Pure arithmetic on lengths (positions a row takes in a forward), so the rule can be read and
tested apart from the queue that applies it.
"""

from __future__ import annotations

from collections.abc import Sequence


def group(lengths: Sequence[int], max_rows: int, max_tokens: int, max_padding: float) -> list[int]:
    """Indices into `lengths` (oldest first) of the next batch; index 0 is always in it.

    Rows join closest in length to the oldest first, while the batch stays within `max_rows`
    rows and `max_tokens` padded tokens (rows x longest). Once it holds a quarter of `max_rows`,
    a row joins only if the share of padding stays within `max_padding` (or does not grow): on
    CPU, where a forward's cost is linear in positions, padding is pure waste, while batches of
    a quarter of the size cost no more per row.
    """
    anchor = lengths[0]
    order = sorted(range(1, len(lengths)), key=lambda i: abs(lengths[i] - anchor))
    unbudgeted_rows = max(1, max_rows // 4)
    chosen, longest, real = [0], anchor, anchor
    for i in order:
        if len(chosen) == max_rows:
            break
        new_longest = max(longest, lengths[i])
        padded = new_longest * (len(chosen) + 1)
        if padded > max_tokens:
            continue
        share = 1.0 - (real + lengths[i]) / padded
        allowed = max(max_padding, 1.0 - real / (longest * len(chosen)))
        if len(chosen) >= unbudgeted_rows and share > allowed:
            continue
        chosen.append(i)
        longest, real = new_longest, real + lengths[i]
    return chosen

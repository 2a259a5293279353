"""Ids sort in the order they were made (pure logic)."""

import re
import threading

from app.kit.ids import new_id


def test_ids_made_back_to_back_sort_in_the_order_they_were_made() -> None:
    # Thousands within a few milliseconds: many share one, and must still increase.
    ids = [new_id("audit") for _ in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"audit-[0-9a-f]{28}", i) for i in ids)


def test_ids_stay_unique_and_ordered_across_threads() -> None:
    made: list[list[str]] = [[] for _ in range(4)]

    def make(bucket: list[str]) -> None:
        bucket.extend(new_id("x") for _ in range(2000))

    threads = [threading.Thread(target=make, args=(bucket,)) for bucket in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for bucket in made for i in bucket]
    assert len(set(every)) == len(every)
    assert all(bucket == sorted(bucket) for bucket in made)

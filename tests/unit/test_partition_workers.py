"""A partition's worker drops the messages polled before a seek back, and only those: when the
message it waits for can no longer come (its partition moved and came back from a committed offset
past it), the partition goes on instead of dropping everything after it for good (issue 21, found
on the three-broker cluster)."""

from __future__ import annotations

from services.kernel.consumer import PartitionWorkers


class Raw:
    """A polled message, as the subscriber hands it to the workers."""

    def __init__(self, offset: int) -> None:
        self._offset = offset

    def topic(self) -> str:
        return "complaints.intake.v1"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


async def run(offsets: list[int], fail_once: int, committed_offset: int) -> list[int]:
    """Deliver ``offsets`` in order; the first delivery of ``fail_once`` is nacked (to come
    again); the group's committed offset meanwhile is ``committed_offset``. The offsets handled."""
    handled, failed = [], set()

    async def handle(message) -> None:
        offset = message.offset()
        if offset == fail_once and offset not in failed:
            failed.add(offset)
            return workers.rewound(message)  # as the consumer's retry does, with its seek back
        handled.append(offset)

    async def committed(message) -> int:
        return committed_offset

    workers = PartitionWorkers(handle, depth=16, committed=committed)
    for offset in offsets:
        await workers.submit(Raw(offset))
    await workers.drain(5)
    return handled


async def test_messages_polled_before_the_seek_back_are_dropped_until_the_failed_one_comes_again():
    # 5 failed; 6 and 7 were already polled; after the seek, 5, 6, 7 come again
    assert await run([4, 5, 6, 7, 5, 6, 7], fail_once=5, committed_offset=5) == [4, 5, 6, 7]


async def test_when_the_failed_message_was_committed_meanwhile_the_partition_goes_on():
    # 5's partition moved away (the seek back failed) and came back from committed offset 6 (its
    # commit was late, or another consumer handled it): 5 never comes again, 6 and 7 are the work
    assert await run([4, 5, 6, 7], fail_once=5, committed_offset=6) == [4, 6, 7]

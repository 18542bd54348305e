"""Leave no Ray process behind: ``python -m docsprint.batch.reaper DRIVER_PID``.

Started by `run_batch` in a session of its own. While the driver lives it notes, every half
second, every process descending from it (Ray's GCS, raylet, agents and workers, with their
start times); when the driver is gone, killed with SIGKILL or not, it kills whatever of that
tree is still there (same pid and start time: never a recycled pid) and exits. Ray's own fate
sharing stops the raylet with the driver, but its agents can outlive it for minutes.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of ``pid``, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    return int(fields[1]), int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """pid -> start time of every living process under ``root``."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                parents.setdefault(st[0], []).append(int(entry))
                starts[int(entry)] = st[1]
    found: dict[int, int] = {}
    todo = list(parents.get(root, []))
    while todo:
        pid = todo.pop()
        if pid not in found and pid in starts:
            found[pid] = starts[pid]
            todo += parents.get(pid, [])
    return found


def watch(driver: int, every: float = 0.5) -> int:
    first = _stat(driver)
    seen: dict[int, int] = {}
    while first is not None and (now := _stat(driver)) is not None and now[1] == first[1]:  # same process
        seen.update(descendants(driver))
        time.sleep(every)
    seen.pop(os.getpid(), None)  # the reaper is the driver's child too
    killed = 0
    for pid, started in sorted(seen.items()):
        st = _stat(pid)
        if st is not None and st[1] == started:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
    return killed


if __name__ == "__main__":
    watch(int(sys.argv[1]))

"""What a sweep says of its trials on stderr: one whole line each, whichever slot's thread says it."""

from __future__ import annotations

import sys
import threading

from expresso.sweeps import execute


def test_a_trial_line_reaches_stderr_in_one_write_so_two_slots_lines_never_interleave(monkeypatch):
    """print writes the text and its newline apart: two slots' lines came out as 'AB' and '' (make test-slow, once)."""
    writes: list[str] = []

    class Recording:
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    monkeypatch.setattr(sys, "stderr", Recording())
    threads = [
        threading.Thread(target=execute._say, args=(f"trial {n:03d}: completed earlier, skipped",)) for n in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(writes) == [f"trial {n:03d}: completed earlier, skipped\n" for n in range(8)]

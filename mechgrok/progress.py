"""Progress of a long loop: a tqdm bar on a terminal, a plain line every ``interval`` s in a log.

A bar redraws with carriage returns, which a log file (``make demo > log``) turns into one
unreadable line, or nothing at all; so off a terminal a plain line is printed instead, with
the step, the latest numbers, the rate and the time left.
"""

from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm


class Progress:
    def __init__(self, total: int, initial: int = 0, desc: str = "", enabled: bool = True,
                 interval: float = 30.0, stream=None):
        self.stream = stream or sys.stderr
        self.total, self.done, self.desc, self.interval = total, initial, desc, interval
        self.enabled = enabled
        self.bar = tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, file=self.stream) \
            if enabled and self.stream.isatty() else None
        self.start, self.start_done = time.perf_counter(), initial
        self.last_line, self.last_done = self.start, initial
        self.postfix: dict[str, str] = {}

    def set(self, **values: str) -> None:
        self.postfix = values
        if self.bar is not None:
            self.bar.set_postfix(**values)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.enabled and time.perf_counter() - self.last_line >= self.interval:
            self.print_line()

    def print_line(self) -> None:
        """step, numbers, the rate over the last interval (so the time left follows a change of load, not the
        average since the start), and the time left; at the end, 'done'."""
        now = time.perf_counter()
        rate = (self.done - self.last_done) / max(now - self.last_line, 1e-9)
        self.last_line, self.last_done = now, self.done
        numbers = " ".join(f"{k} {v}" for k, v in self.postfix.items())
        if self.done >= self.total:
            left = "done"
        else:
            left = f"~{(self.total - self.done) / rate:.0f} s left" if rate > 0 else "time left unknown"
        print(f"{self.desc}: {self.done}/{self.total} {numbers} {rate:.3g}/s, {left}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.done > self.last_done:  # the last stretch, unless a line just said it
            self.print_line()

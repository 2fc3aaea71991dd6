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
        self.last_line = self.start
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
        now = time.perf_counter()
        self.last_line = now
        rate = (self.done - self.start_done) / max(now - self.start, 1e-9)
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        numbers = " ".join(f"{k} {v}" for k, v in self.postfix.items())
        print(f"{self.desc}: {self.done}/{self.total} {numbers} {rate:.3g}/s, ~{left:.0f} s left",
              file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.done > self.start_done:
            self.print_line()

"""Progress off a terminal: plain lines a log file can hold, with the rate and the time left."""

import io

from mechgrok.progress import Progress


def test_plain_lines_when_not_a_terminal():
    stream = io.StringIO()  # not a TTY, like `make demo > log`
    bar = Progress(100, desc="run", interval=0.0, stream=stream)
    bar.set(train_loss="0.5", test_acc="0.100")
    bar.update(10)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in stream.getvalue()
    assert lines[0].startswith("run: 10/100 train_loss 0.5 test_acc 0.100") and "/s, ~" in lines[0]
    assert lines[0].endswith("s left")


def test_quiet_prints_nothing():
    stream = io.StringIO()
    bar = Progress(10, enabled=False, interval=0.0, stream=stream)
    bar.update(5)
    bar.close()
    assert stream.getvalue() == ""

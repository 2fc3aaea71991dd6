"""Progress off a terminal: plain lines a log file can hold, with the rate and the time left."""

import io

from mechgrok.progress import Progress


def test_plain_lines_when_not_a_terminal():
    stream = io.StringIO()  # not a TTY, like `make demo > log`
    bar = Progress(100, desc="run", interval=0.0, stream=stream)
    bar.set(train_loss="0.5", test_acc="0.100")
    bar.update(10)
    bar.update(90)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in stream.getvalue()  # close adds nothing the last line said
    assert lines[0].startswith("run: 10/100 train_loss 0.5 test_acc 0.100") and "/s, ~" in lines[0]
    assert lines[0].endswith("s left") and lines[1].endswith("/s, done")


def test_the_time_left_follows_the_recent_rate(monkeypatch):
    import mechgrok.progress as progress

    now = [0.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    stream = io.StringIO()
    bar = Progress(120, desc="run", interval=0.0, stream=stream)
    now[0] = 100.0  # 10 steps in 100 s (a loaded machine) ...
    bar.update(10)
    now[0] = 110.0  # ... then 10 more in 10 s
    bar.update(10)
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith("0.1/s, ~1100 s left") and lines[1].endswith("1/s, ~100 s left")


def test_quiet_prints_nothing():
    stream = io.StringIO()
    bar = Progress(10, enabled=False, interval=0.0, stream=stream)
    bar.update(5)
    bar.close()
    assert stream.getvalue() == ""

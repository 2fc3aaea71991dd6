"""The one error the CLI prints as one line."""

from mechgrok.cli import main
from mechgrok.errors import MechgrokError


def test_a_mechgrok_error_is_one_line_and_exit_status_2(tmp_path, capsys):
    assert issubclass(MechgrokError, Exception)
    assert main(["analyze", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mechgrok: error:") and "nowhere" in err[0]

"""Copy each study's generated table into its results/<study>/README.md, by command (never by hand).

    .venv/bin/python scripts/sync_results.py          # rewrite the quoted tables
    .venv/bin/python scripts/sync_results.py --check  # exit 1 when a README quotes a table that has changed

A README quotes a table between ``<!-- table: FILE -->`` and ``<!-- end table -->`` (FILE relative to the
README); the block is FILE's content with its headings demoted two levels. The commands that make the studies
(``mechgrok experiment NAME``, ``mechgrok sweep SPEC``, ``make results``) write FILE; ``make results`` and this
script then refresh the READMEs, and ``tests/unit/test_docs.py``
(``test_every_results_readme_quotes_its_current_table``) checks they agree.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "results"
BLOCK = re.compile(r"(<!-- table: (?P<file>[^ ]+) -->\n)(?P<body>.*?)(<!-- end table -->)", re.S)


def quoted(readme: Path, file: str) -> str:
    if not (readme.parent / file).is_file():
        return f"*`{file}` is not written yet: run the command below.*\n"
    text = (readme.parent / file).read_text()
    return re.sub(r"^(#+) ", lambda m: "#" * (len(m.group(1)) + 2) + " ", text, flags=re.M).rstrip() + "\n"


def synced(readme: Path) -> str:
    return BLOCK.sub(lambda m: m.group(1) + quoted(readme, m.group("file")) + m.group(4), readme.read_text())


def main() -> int:
    stale = []
    for readme in sorted(ROOT.rglob("README.md")):
        new = synced(readme)
        if new != readme.read_text():
            stale.append(readme)
            if "--check" not in sys.argv:
                readme.write_text(new)
    for readme in stale:
        print(f"{readme.relative_to(ROOT.parent)}: {'out of date' if '--check' in sys.argv else 'updated'}")
    return 1 if stale and "--check" in sys.argv else 0


if __name__ == "__main__":
    sys.exit(main())

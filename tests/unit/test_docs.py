"""The documentation: the site builds with no broken link, the README stays short, the results READMEs quote
their current tables, and the headline figures are where the README shows them."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOPICS = ["getting-started", "training", "analysis", "groups", "explorer", "sweeps", "experiments", "import",
          "reliability", "benchmarks", "architecture", "api"]


def test_mkdocs_build_strict_makes_a_page_per_topic_and_the_api_reference(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                            cwd=ROOT, capture_output=True, text=True, env={"NO_MKDOCS_2_WARNING": "1",
                                                                           "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
    for topic in TOPICS:
        assert (site / topic / "index.html").is_file(), topic
    api = (site / "api" / "index.html").read_text()
    for name in ("mechgrok.hooked.build_model", "mechgrok.foreign.import_run", "mechgrok.analysis.pipeline.analyze_run"):
        assert f'id="{name}"' in api, name
    headline = (site / "results" / "headline" / "index.html").read_text()
    assert "reproduced on a laptop-class CPU" in headline  # the results README, included at build time


def test_the_readme_is_short_and_links_only_to_what_exists():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    assert not re.search(r"\b(this session|tests? in \d|\d+ tests)\b", text)  # nothing that goes stale
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target


def test_the_headline_figures_are_at_the_top_level():
    for name in ("losses", "restricted_excluded", "embedding_spectrum", "neuron_clusters"):
        assert (ROOT / "figures" / f"{name}.png").stat().st_size > 10_000, name


def test_every_results_readme_quotes_its_current_table():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "sync_results.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    studies = {p.parent.relative_to(ROOT / "results").as_posix() for p in (ROOT / "results").rglob("README.md")}
    assert {"add_p113_seed0", "sweeps/seeds_p113", "sweeps/wd_lr_p47", "experiments/augmentation",
            "experiments/grokfast", "experiments/gromov", "experiments/miiii", "experiments/miiii-code",
            "experiments/fast_recipe"} <= studies

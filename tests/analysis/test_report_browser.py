"""Open the report in headless Chromium: the page renders (non-blank screenshot), logs no
console errors, and its DOM holds only inline PNG images that decode. Skipped without Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from xstilts.analysis.report import audit_html, build_report
from xstilts.analysis.simulate import simulate_study
from xstilts.analysis.stats import AnalysisConfig

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CONSOLE = re.compile(r":CONSOLE[(:]|Failed to load resource|net::ERR_|Uncaught ")


def chromium(url: str, tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    args = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *extra, url]
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "HOME": str(tmp)},
    )


def console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if CONSOLE.search(line)]


def screenshot(page: Path, tmp: Path) -> tuple[Path, list[str]]:
    png = tmp / "shot.png"
    proc = chromium(
        page.resolve().as_uri(),
        tmp,
        f"--screenshot={png}",
        "--window-size=1280,4000",
        "--enable-logging=stderr",
        "--v=0",
    )
    return png, console_errors(proc.stderr)


def dump_dom(page: Path, tmp: Path) -> tuple[str, list[str]]:
    proc = chromium(page.resolve().as_uri(), tmp, "--dump-dom", "--enable-logging=stderr", "--v=0")
    return proc.stdout, console_errors(proc.stderr)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    sim = simulate_study(
        sizes=(1e7, 1e8, 1e9), gap_slope=0.05, n_test=80, n_dev=60, langs=("en", "de", "ja")
    )
    out = tmp_path_factory.mktemp("browser_report")
    meta = {"title": "Browser check", "caveats": ["4-bit weights"]}
    paths = build_report(
        sim.results,
        sim.predictions,
        sim.intermediate,
        meta,
        out,
        config=AnalysisConfig(n_boot=100, regression=False),
    )
    return paths.html


def test_screenshot_is_non_blank_and_console_clean(report, tmp_path):
    png, errors = screenshot(report, tmp_path)
    assert errors == []
    assert png.is_file() and png.stat().st_size > 0
    pixels = mpimg.imread(png)
    assert pixels.shape[0] == 4000 and pixels.shape[1] == 1280
    assert float(np.var(pixels[..., :3])) > 0
    # more than a blank page with a line of text: a good share of pixels are not white
    assert float((pixels[..., :3] < 0.9).any(axis=-1).mean()) > 0.02


def test_dom_images_are_inline_pngs(report, tmp_path):
    dom, errors = dump_dom(report, tmp_path)
    assert errors == []
    assert "Browser check" in dom
    n_images, problems = audit_html(dom)
    assert problems == []
    assert n_images == 5


def test_checks_catch_a_broken_page(tmp_path):
    # negative control: the same checks must fail on a page with a missing image and errors
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><body><p>x</p><img src='missing.png'>"
        "<script>console.error('boom'); notDefined();</script></body></html>",
        encoding="utf-8",
    )
    dom, errors = dump_dom(bad, tmp_path)
    assert len(errors) >= 2
    assert audit_html(dom)[1]

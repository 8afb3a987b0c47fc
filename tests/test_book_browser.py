"""Build the book and look at it in a real (headless) browser.

Marked slow: it executes every chapter notebook. Training runs are shared
with the nbval run through ``ECHOLIB_RUNS`` when ``make test`` sets it, so
they are trained once per test session.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

from echolib.models.registry import available_architectures
from echolib.paths import PROJECT
from echolib.pipeline.book import build, chapters
from echolib.report.measured import measured_comparisons

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "_build" / "screenshots"
STUDY = Path(os.environ.get("ECHOLIB_SHARED_DATA", ROOT.parent / "shared" / "data")) / "seed-reference"
pytestmark = [pytest.mark.browser, pytest.mark.book]


@pytest.fixture(scope="module")
def book() -> Path:
    # inside the project, as `make test` has it: a chapter shows its parameters, and a temporary
    # folder's absolute path in a page is what test_no_page_shows_noise_or_build_paths refuses
    runs = os.environ.get("ECHOLIB_RUNS") or str(ROOT / "_build" / "test-runs")
    index = build("phantom", runs, device="cpu", progress=False)
    return index.parent


def test_the_privacy_chapter_reports_the_filter_the_memorisation_and_the_utility(book):
    """The chapter as the book executed it: the smoke_cond run's 64 samples, the filter, the utility test."""
    import json

    from echolib.paths import PROJECT
    from echolib.report import privacy

    executed = ROOT / "book" / "generated" / "privacy.ipynb"
    cells = [c for c in json.loads(executed.read_text())["cells"] if c["cell_type"] == "code"]
    outputs = [o for c in cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/html", ""))
                   for o in outputs)
    for words in ("64 samples of diffusion/smoke_cond", "checkpoint sha256", "held-out flagged", "same video flagged",
                  "trained on synthetic frames, phase_auc"):
        assert words in text, words
    measured = PROJECT / "book" / "measured"
    kept_utility, kept_sheets = privacy.kept_utility(measured), privacy.kept_datasheets(measured)
    assert ("no utility records or datasheets of real frames" in text) == (not kept_utility and not kept_sheets)
    for sheet in kept_sheets.values():  # the verdicts on real frames, as the records give them
        assert privacy.copying_verdict(sheet) in text
    for records in kept_utility.values():
        assert privacy.utility_verdict(records) in text
    assert "draws flagged" in text  # the smoke set's verdict
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 3  # distances, two galleries of pairs


@pytest.fixture(scope="module")
def server(book):
    handler = functools.partial(_QuietHandler, directory=str(book))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output readable
        pass


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium, driver_bin = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_bin):
        pytest.skip("headless Chromium not installed (make browser-deps installs Debian's chromium, chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic", "--window-size=1280,1600",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_bin), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _open(browser, url: str, shot: str) -> list[dict]:
    browser.get_log("browser")  # drop messages from earlier pages
    browser.get(url)
    browser.execute_script("return document.readyState")
    # wait until every image finished loading (or failed)
    browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "Promise.all([...document.images].map(i => i.complete ? 1 : new Promise(r => {i.onload = i.onerror = r;})))"
        ".then(() => done(true));"
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / shot))
    return browser.get_log("browser")


def _broken_images(browser) -> list[str]:
    return browser.execute_script(
        "return [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src);"
    )


def _unrendered_math(browser) -> list[str]:
    """Math the reader sees as TeX source: MathJax errors, and ``$`` or ``\\command`` in the prose.

    Markdown can swallow math silently: a wrapped line that starts with ``+`` became a
    list item and spilled the rest of a formula as raw TeX, and display math inside a
    list item showed its dollars. Neither breaks the build, so this looks at the page.
    """
    return browser.execute_async_script(_UNRENDERED_MATH_JS)


_UNRENDERED_MATH_JS = r"""
const done = arguments[arguments.length - 1];
const ready = window.MathJax && MathJax.startup ? MathJax.startup.promise : Promise.resolve();
ready.then(() => {
  const errors = [...document.querySelectorAll('mjx-merror')].map(e => 'MathJax error: ' + e.textContent);
  const body = (document.querySelector('article') || document.body).cloneNode(true);
  body.querySelectorAll('mjx-container, pre, code, script, style').forEach(e => e.remove());
  const blocks = [...body.querySelectorAll('p, li, td, th, dt, dd, h1, h2, h3, h4, figcaption')];
  const raw = blocks.map(e => e.textContent.trim()).filter(t => /\$|\\[A-Za-z]{2,}/.test(t));
  done(errors.concat([...new Set(raw)]));
});
"""


def _errors(logs: list[dict]) -> list[str]:
    return [e["message"] for e in logs if e.get("level") == "SEVERE"]


@pytest.mark.slow
def test_index_page(browser, server):
    logs = _open(browser, f"{server}/index.html", "index.png")
    assert "Synthetic echocardiograms" in browser.title
    assert _broken_images(browser) == []
    assert _errors(logs) == []
    assert _unrendered_math(browser) == []
    assert (SHOTS / "index.png").stat().st_size > 10_000


@pytest.mark.slow
def test_every_chapter_renders_with_images(browser, server):
    for name in chapters():
        logs = _open(browser, f"{server}/book/generated/{name}.html", f"{name}.png")
        assert "Page not found" not in browser.title, name
        assert _broken_images(browser) == [], name
        assert _errors(logs) == [], (name, _errors(logs))
        assert _unrendered_math(browser) == [], name


@pytest.mark.slow
def test_comparison_page_has_a_row_per_architecture(browser, server):
    if "compare" not in chapters():
        pytest.fail("the book has no comparison chapter (book/generated/compare in _toc.yml)")
    logs = _open(browser, f"{server}/book/generated/compare.html", "compare.png")
    assert _errors(logs) == []
    assert _broken_images(browser) == []
    n_images = browser.execute_script("return document.images.length;")
    assert n_images >= 4  # curves, radar, violin, heatmap, sample grids
    # the table of this build's runs; the kept 64 px tables above it carry the class "measured"
    table_text = browser.execute_script(
        "const t = document.querySelector('table.comparison:not(.measured)');"
        "return t ? t.innerText : '';"
    )
    assert table_text, "no comparison table of this build's runs on the page"
    browser.execute_script("(document.querySelector('table.comparison:not(.measured)') || document.body).scrollIntoView();")
    browser.save_screenshot(str(SHOTS / "compare-table.png"))
    for arch in available_architectures():
        assert arch in table_text, f"no row for {arch}"
    # the default build's rows are smoke runs, and the page says so where the table is
    assert "Our rows are smoke runs" in browser.execute_script("return document.querySelector('main').innerText")
    if (STUDY / "stylegan2-ada-E4-samples").is_dir():  # the study's model, evaluated by our code
        assert "stylegan2_ada (published)" in table_text
    if (STUDY / "training-logs").is_dir():  # the study's own numbers
        assert "study (reported)" in table_text
    # the 64 px tables generated from book/measured: one per kept session, a row per kept run
    measured = browser.execute_script(
        "return [...document.querySelectorAll('table.comparison.measured')].map(t => t.innerText);")
    kept = measured_comparisons(PROJECT / "book" / "measured", resolution=64)
    assert len(measured) == len(kept)
    for text, records in zip(measured, kept.values()):
        rows = {r["row"] for r in records}
        assert len(text.strip().splitlines()) == 1 + len(rows)  # a header and a line per row
        for row in sorted(r for r in rows if not r.startswith("reference:")):
            arch, config = row.split("/")
            assert f"{arch}\t{config}\t" in text, f"no row for {row} in the kept 64 px table"


@pytest.mark.slow
def test_bibliography_labels_are_short(browser, server):
    """Alpha-style labels are initials and a year. An accent written as TeX in references.bib
    (``Bi{\\'n}kowski``) made pybtex keep the whole name: [BinkowskiSAG18]."""
    import re

    logs = _open(browser, f"{server}/book/bibliography.html", "bibliography.png")
    assert _errors(logs) == []
    labels = browser.execute_script("return [...document.querySelectorAll('span.label')].map(e => e.textContent);")
    assert len(labels) >= 20
    assert [x for x in labels if not re.fullmatch(r"\[[A-Za-z]{1,5}\+?\d{2}[a-z]?\]", x)] == []


# What a reader must never see in a page: a progress bar (tqdm draws "%|"), a warning, or a path of
# the machine that built the book.
NOISE = ("%|", "/tmp/", "/root/", "/home/", "/work/", "Warning")

_PAGE_TEXT_JS = """
const main = document.querySelector('main') || document.body;
const cut = [...main.querySelectorAll('pre')].filter(p => {
  const style = getComputedStyle(p);
  const scrolls = ['auto', 'scroll'].includes(style.overflowX);
  return p.scrollWidth > p.clientWidth + 1 && !scrolls;
}).map(p => p.innerText.split('\\n')[0].slice(0, 80));
return {text: main.innerText, cut: cut};
"""


def _pages(book: Path) -> list[str]:
    """Every page of the built book, as paths relative to its root."""
    skip = {"genindex.html", "search.html"}
    return sorted(str(p.relative_to(book)) for p in book.rglob("*.html")
                  if p.name not in skip and not {"_static", "_sources", "_images"} & set(p.relative_to(book).parts))


@pytest.mark.slow
def test_no_page_shows_noise_or_build_paths(browser, server, book):
    """Every page's visible text is free of progress bars, warnings and build-machine paths, and no code
    block is cut off at the right edge (it wraps or scrolls)."""
    pages = _pages(book)
    assert {"book/intro.html", "book/developer.html", "book/generated/compare.html",
            "book/generated/measured.html"} <= set(pages)
    found, cut = {}, {}
    for page in pages:
        browser.get(f"{server}/{page}")
        seen = browser.execute_script(_PAGE_TEXT_JS)
        lines = [line.strip() for line in seen["text"].splitlines() if any(n in line for n in NOISE)]
        if lines:
            found[page] = lines[:5]
        if seen["cut"]:
            cut[page] = seen["cut"][:5]
    browser.get(f"{server}/book/generated/compare.html")
    browser.save_screenshot(str(SHOTS / "compare-clean.png"))
    assert found == {}, f"progress bars, warnings or build-machine paths in pages: {found}"
    assert cut == {}, f"code cut off at the right edge: {cut}"

"""JupyterLab as ``make lab`` starts it, driven by a headless browser: a notebook opens as a notebook, and a
rater's clicks in the Turing app reach the rater's file.

The users explore in JupyterLab first. Two things stood between them and the
notebooks: a double click on ``notebooks/turing.py`` opened a Python text
file, and the kernel had to be picked by hand. ``make lab`` installs
``lab/overrides.json`` into the venv's JupyterLab settings (Jupytext's notebook
viewer for Python files, for this venv only) and the venv's kernelspec
``python3`` ("Python 3 (echolib)"), which the notebooks' metadata names. This
test starts JupyterLab from the same venv with an empty user configuration
(so nothing in the home folder helps), opens the real notebook, runs the cells
up to the rater app, answers two questions by clicking, and reads the answers
back from the file the app wrote.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from echolib.pipeline.notebooks import read_notebook

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "_build" / "screenshots"
NOTEBOOK = ROOT / "notebooks" / "turing.py"
OVERRIDES = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
APP_CELL = "TuringApp(questionnaire, demo / \"your-answers\")"
RATER = "browser-test"

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server of this venv on a free localhost port, with a token, its user dirs empty."""
    if not OVERRIDES.is_file() or OVERRIDES.read_text() != (ROOT / "lab" / "overrides.json").read_text():
        pytest.fail(f"{OVERRIDES} is missing or differs from lab/overrides.json: run `make lab-settings` "
                    "(make test and make lab do)")
    home = tmp_path_factory.mktemp("lab")
    for d in ("config", "data", "runtime", "settings", "workspaces", "tmp"):
        (home / d).mkdir()
    # autosave off: running cells must not rewrite the tracked notebook
    (home / "settings" / "@jupyterlab" / "docmanager-extension").mkdir(parents=True)
    (home / "settings" / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings").write_text(
        json.dumps({"autosave": False}))
    checkpoints = NOTEBOOK.parent / ".ipynb_checkpoints"  # JupyterLab's, made when it opens a file
    had_checkpoints = checkpoints.exists()
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), TMPDIR=str(home / "tmp"), TQDM_DISABLE="1")
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}", "--LabApp.expose_app_in_browser=True",
         f"--LabApp.user_settings_dir={home / 'settings'}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"JupyterLab did not start: {(home / 'server.log').read_text()[-3000:]}")
        time.sleep(0.5)
    yield {"url": url, "token": token, "tmp": home / "tmp", "log": home / "server.log"}
    server.terminate()  # the server shuts its kernels down on SIGTERM
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()
    if not had_checkpoints:
        shutil.rmtree(checkpoints, ignore_errors=True)


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
                 "--window-size=1400,1000", f"--user-data-dir={tmp_path_factory.mktemp('chromium-lab')}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_bin), options=opts)
    driver.set_page_load_timeout(90)
    driver.set_script_timeout(180)
    yield driver
    driver.quit()


def _wait(browser, script: str, what: str, *args, timeout: float = 90):
    """Poll a JavaScript function body until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = browser.execute_script(script, *args)
        if value:
            return value
        time.sleep(0.25)
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "lab-timeout.png"))
    pytest.fail(f"timed out waiting for {what} (screenshot: _build/screenshots/lab-timeout.png)")


def _shot(browser, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / name))


# the rater app's controls, found by their labels inside the app's output area
_APP_JS = """
const app = [...document.querySelectorAll('.jp-OutputArea-output')].find(o => o.innerText.includes('Rater id'));
if (!app) return null;
const visible = e => e.offsetParent !== null;
const buttons = [...app.querySelectorAll('button')].filter(visible);
return {
  input: app.querySelector('input[type=text]'),
  start: buttons.find(b => b.innerText.includes('Start / resume')),
  picks: buttons.filter(b => b.classList.contains('widget-toggle-button') && b.innerText.trim() === 'Real'),
  verdict: buttons.filter(b => b.closest('.widget-toggle-buttons') && b.innerText.trim() === 'Real'),
  confidence: buttons.filter(b => b.closest('.widget-toggle-buttons') && b.innerText.trim() === '3'),
  next: buttons.find(b => ['Next', 'Finish'].includes(b.innerText.trim())),
  label: (app.querySelector('.widget-html-content b') || {}).innerText || '',
};
"""


def test_turing_notebook_opens_as_a_notebook_and_the_rater_app_records_clicks(lab, browser):
    before = NOTEBOOK.read_bytes()
    t0 = time.monotonic()
    browser.get(f"{lab['url']}/lab/tree/notebooks/turing.py?token={lab['token']}")
    _wait(browser, "return document.querySelectorAll('.jp-NotebookPanel .jp-Cell').length", "notebook cells")
    # the notebook renders its cells lazily as they scroll into view; its model holds them all
    n_cells = _wait(browser, "const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                             "return w && w.content && w.content.model && w.content.model.cells.length > 20 &&"
                             " w.content.model.cells.length", "the notebook's cells")
    assert n_cells == len([c for c in read_notebook(NOTEBOOK).cells]), n_cells
    assert browser.execute_script("return document.querySelectorAll('.jp-FileEditor').length") == 0, \
        "turing.py opened in the text editor"
    heading = _wait(browser, "const h = document.querySelector('.jp-MarkdownCell .jp-RenderedMarkdown h1');"
                             "return h && h.innerText", "a rendered markdown heading")
    assert "The visual Turing test" in heading
    kernel = _wait(browser, "const k = document.querySelector('.jp-KernelName, .jp-Toolbar-kernelName');"
                            "const t = k && k.innerText.trim(); return t && t !== 'No Kernel' && t", "the kernel name")
    assert kernel == "Python 3 (echolib)"
    assert browser.execute_script("return document.querySelectorAll('.jp-Dialog').length") == 0, \
        "JupyterLab asked for a kernel"
    _shot(browser, "lab-turing-opened.png")

    # run every cell above the rater app's, then that cell, as a reader would with Shift+Enter
    ran = browser.execute_async_script("""
const done = arguments[arguments.length - 1];
const app = window.jupyterapp;
const nb = app.shell.currentWidget.content;
const i = nb.widgets.findIndex(c => c.model.sharedModel.getSource().includes(arguments[0]));
if (i < 0) { done('no cell with ' + arguments[0]); return; }
app.shell.currentWidget.sessionContext.ready.then(async () => {
  nb.activeCellIndex = i;
  await app.commands.execute('notebook:run-all-above');
  nb.activeCellIndex = i;
  await app.commands.execute('notebook:run-cell');
  done(i);
}).catch(e => done('failed: ' + e));
""", APP_CELL)
    assert isinstance(ran, int), ran
    app = _wait(browser, _APP_JS, "the rater app", timeout=120)
    errors = browser.execute_script(
        "return [...document.querySelectorAll('.jp-OutputArea-output[data-mime-type=\"application/vnd.jupyter.stderr\"]')]"
        ".map(e => e.innerText).filter(t => t.includes('Error'))")
    assert errors == [], errors
    app["input"].send_keys(RATER)
    app["start"].click()
    answered = []
    for _ in range(2):
        app = _wait(browser, "const a = (() => {" + _APP_JS + "})(); return a && a.next && a.label.startsWith('Question') && a",
                    "a question")
        label = app["label"]
        for button in app["picks"]:  # pick until the app accepts the answer (one or two real images)
            if app["next"].is_enabled():
                break
            button.click()
        if app["verdict"]:  # a per-image question: a verdict and a confidence
            app["verdict"][0].click()
            app["confidence"][0].click()
        _wait(browser, "const a = (() => {" + _APP_JS + "})(); return a && a.next && !a.next.disabled",
              "an enabled Next button")
        _shot(browser, f"lab-turing-question-{len(answered) + 1}.png")
        app["next"].click()
        _wait(browser, "const a = (() => {" + _APP_JS + "})(); return a && a.label !== arguments[0]",
              "the next question", label)
        answered.append(label)
    _shot(browser, "lab-turing-answered.png")

    files = list(lab["tmp"].glob(f"turing-demo-*/your-answers/{RATER}.jsonl"))
    assert len(files) == 1, files
    lines = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert len(lines) == 2 and len({r["question"] for r in lines}) == 2, lines
    assert all(r["rater"] == RATER and r["picks"] for r in lines), lines
    assert NOTEBOOK.read_bytes() == before, "running the notebook in JupyterLab changed notebooks/turing.py"
    print(f"JupyterLab: opened, ran and answered in {time.monotonic() - t0:.1f} s")

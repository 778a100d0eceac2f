"""hil dash in a real browser: the realtime chain on the twin, watched live in headless Chromium.

Two processes, as in the lab: ``hil run chain --speed 200`` (realtime, 200 lab seconds per wall
second: the chain's ~1.5 h of lab time in well under a minute of compute and waits) writes the
run file, ``hil dash`` serves it; Debian's Chromium, driven by Selenium, opens the run page and
must see a running step's point count and plot grow, then the run turn ``completed`` with its
results table. The page's screenshot is kept in pytest's tmp dir and, when ``HIL_ARTEFACTS``
names a folder, copied there (its path is printed). Skipped, saying why, where Chromium or its
driver is not installed (CI installs both: .ci/run).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
HIL = [sys.executable, "-c", "from hil.cli import main; main()"]
#: Lab seconds per wall second: the chain's waits (~80 min of lab time) take ~25 s of wall time,
#: its steps still last seconds each (added_noise: 40 points over ~12 s), long enough to watch.
SPEED = "200"
#: Generous bounds for a loaded 2-core machine; every wait polls and ends as soon as it can.
RUN_TIMEOUT_S = 240

pytestmark = pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
    reason=f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}): "
           f"apt-get install chromium chromium-driver (CI does)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout: float, what: str, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1600,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


#: What the run page shows, read in one go: the run's state, the running step (the page's
#: highlighted step), its point count and how many points (or map rows) its plot holds.
PAGE_STATE_JS = """
const active = document.querySelector('#steps li.active .name');
const plot = document.getElementById('plot');
const plotted = plot && plot.data ? plot.data.reduce(
    (n, trace) => n + (trace.y ? trace.y.filter(v => v !== null).length : 0), 0) : 0;
const count = document.getElementById('point-count');
return {state: document.getElementById('state').textContent.toLowerCase(),
        step: active ? active.textContent : null,
        count: count ? parseInt(count.textContent.replace(/[^0-9]/g, ''), 10) : 0,
        plotted: plotted};
"""


def test_the_realtime_chain_is_watched_live_until_completed(tmp_path, browser):
    runs = tmp_path / "runs"
    runs.mkdir()
    run_file = runs / "live_chain.h5"
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    dash = subprocess.Popen([*HIL, "dash", "--runs", str(runs), "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run = None
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/api/runs"), 30, "hil dash to answer")
        run = subprocess.Popen([*HIL, "run", "chain", "--speed", SPEED, "--out", str(run_file)],
                               env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        wait_for(run_file.exists, 60, "the run file")
        browser.get(f"http://127.0.0.1:{port}/runs/{run_file.stem}")

        # Running: per step, the first and the latest (count, plotted) the page showed while
        # that step was the one being written. Sampled until the page says the run ended.
        seen: dict[str, list[tuple[int, int]]] = {}
        deadline = time.monotonic() + RUN_TIMEOUT_S
        page = browser.execute_script(PAGE_STATE_JS)
        while page["state"] in ("", "running"):
            if page["step"] and page["state"] == "running":
                first_last = seen.setdefault(page["step"], [])
                first_last[1:] = [(page["count"], page["plotted"])]
                if len(first_last) == 1:
                    first_last.append(first_last[0])
            assert time.monotonic() < deadline, f"the run still running after {RUN_TIMEOUT_S} s"
            time.sleep(0.2)
            page = browser.execute_script(PAGE_STATE_JS)
        grew = {step: pair for step, pair in seen.items()
                if pair[1][0] > pair[0][0] and pair[1][1] > pair[0][1]}
        assert grew, f"no running step's count and plot grew on the page: {seen}"

        # Then completed, with the chain's results table.
        assert page["state"] == "completed", page
        assert run.wait(60) == 0, run.stdout.read()
        # One result of each kind of step: the fridge, a resonance fit, a transduction figure.
        wanted = {"t_base_k", "kappa_m_hz", "n_add"}

        def result_names() -> set[str]:
            rows = browser.find_elements("css selector", "#results tbody tr")
            return {row.text.split()[1] for row in rows if len(row.text.split()) > 1}

        wait_for(lambda: wanted <= result_names(), 20, f"{sorted(wanted)} in the results table")
        _keep_screenshot(browser, tmp_path / "dash_run_page.png")
    except BaseException:
        _keep_screenshot(browser, tmp_path / "dash_run_page_failed.png")
        raise
    finally:
        if run is not None:
            stop(run)
        stop(dash)


def _keep_screenshot(browser, path) -> None:
    """The page as the browser drew it, kept in the test's tmp dir and in $HIL_ARTEFACTS."""
    browser.save_screenshot(str(path))
    assert path.stat().st_size > 10_000, "an empty screenshot"
    folder = os.environ.get("HIL_ARTEFACTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        path = shutil.copy(path, folder)
    print(f"\nscreenshot of the run page: {path}")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_unknown_run_page_is_a_404_in_the_browser(tmp_path, browser):
    port = free_port()
    dash = subprocess.Popen([*HIL, "dash", "--runs", str(tmp_path), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/api/runs"), 20, "hil dash to answer")
        browser.get(f"http://127.0.0.1:{port}/runs/no_such_run")
        assert "404" in browser.find_element("tag name", "h2").text
        assert "no_such_run" in browser.find_element("id", "detail").text
    finally:
        stop(dash)


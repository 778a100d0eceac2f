"""hil dash in a real browser: a realtime run on the twin, watched live in headless Chromium.

Two processes, as in the lab: ``hil run ... --realtime`` writes the run file, ``hil dash`` serves
it; Debian's Chromium, driven by Selenium, opens the run page and must see the running step's
point count and plot grow, then the run turn ``completed`` with its results table. The page's
screenshot is kept under pytest's tmp dir (its path is printed). Skipped, saying why, where
Chromium or its driver is not installed (CI installs both: .ci/run).
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
# A realtime cryostat check: 49 readings, one every 0.25 s of wall time (12 s in all).
RUN_SETS = ["--set", "cryostat_check.duration_s=12", "--set", "cryostat_check.interval_s=0.25"]
PLANNED = 49

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


def test_a_realtime_run_is_watched_live_until_completed(tmp_path, browser):
    runs = tmp_path / "runs"
    runs.mkdir()
    run_file = runs / "live_cryostat_check.h5"
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    dash = subprocess.Popen([*HIL, "dash", "--runs", str(runs), "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run = None
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/api/runs"), 20, "hil dash to answer")
        run = subprocess.Popen([*HIL, "run", "cryostat_check", "--realtime", "--out",
                                str(run_file), *RUN_SETS], env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_for(run_file.exists, 30, "the run file")
        browser.get(f"http://127.0.0.1:{port}/runs/{run_file.stem}")

        def count() -> int:
            text = browser.execute_script(
                "const e = document.getElementById('points-cryostat_check');"
                "return e ? e.textContent : null;")
            return int(text.split("/")[0]) if text else 0

        def plotted() -> int:
            return browser.execute_script(
                "const p = document.getElementById('plot');"
                "return p && p.data && p.data.length ? p.data[0].y.length : 0;") or 0

        def state() -> str:
            return browser.find_element("id", "state").text.lower()

        # Running: the count and the plot grow while the run writes.
        first = wait_for(lambda: count() >= 2 and plotted() >= 2 and count(), 30,
                         "the first points on the page")
        assert state() == "running"
        first_plotted = plotted()
        wait_for(lambda: count() >= first + 4, 10, f"the count to grow past {first}")
        wait_for(lambda: plotted() >= first_plotted + 4, 10, "the plot to grow")
        assert run.poll() is None, "the run ended before the page saw it grow"

        # Then completed, with the step's results table.
        wait_for(lambda: state() == "completed", 40, "the run to turn completed")
        assert run.wait(20) == 0, run.stdout.read()
        wait_for(lambda: count() == PLANNED and plotted() == PLANNED, 10,
                 f"all {PLANNED} points on the page")
        rows = wait_for(lambda: [r.text for r in browser.find_elements(
            "css selector", "#results tbody tr")], 10, "the results table")
        names = {row.split()[1] for row in rows}
        assert {"t_base_k", "stability_k", "drift_k_per_s"} <= names
        shot = tmp_path / "dash_run_page.png"
        browser.save_screenshot(str(shot))
        print(f"\nscreenshot of the run page: {shot}")
        assert shot.stat().st_size > 10_000
    except BaseException:
        shot = tmp_path / "dash_run_page_failed.png"
        browser.save_screenshot(str(shot))
        print(f"\nscreenshot of the run page when the test failed: {shot}")
        raise
    finally:
        if run is not None:
            stop(run)
        stop(dash)


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


"""The HTML report in a real headless Chromium (Debian's ``chromium``; ``.ci/run`` installs it).

Chromium is driven through the DevTools protocol over ``--remote-debugging-pipe`` (file
descriptors 3 and 4; no port, no extra package). For every record kind the page must load with
no console message of level error or warning, no uncaught exception and no request for anything
but the page itself (everything is inline), every ``<img>`` must decode (``naturalWidth > 0``),
nothing may overflow the window, and every number tagged with ``data-key`` must show the
record's value. A real run's report is also checked for the headline numbers (clean accuracy,
ASR, the clean model's ASR, the verdicts) and screenshotted: ``report-<kind>.png`` under the
pytest temporary folder, and ``poisonlab-out/test-artifacts/report.png`` when that is writable.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from poisonlab.reports.fmt import num, pct, seconds
from poisonlab.reports.html import build_html, resolve

from .test_html_builder import grid_record, model_scan_record, reproduction_record, scan_record

REPO = Path(__file__).resolve().parents[2]
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe")


def _chromium() -> str | None:
    found = os.environ.get("POISONLAB_CHROMIUM") or next(filter(None, map(shutil.which, CANDIDATES)), None)
    return found if found and os.access(found, os.X_OK) else None


class Chromium:
    """A headless Chromium and one page, spoken to through the DevTools protocol on a pipe."""

    def __init__(self, exe: str, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="poisonlab-chromium-")
        child_in, self._out = os.pipe()   # we write commands, Chromium reads them on fd 3
        self._in, child_out = os.pipe()   # Chromium writes replies on fd 4

        def high(fd: int) -> int:  # out of the way of 3 and 4 while bash moves them there
            moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
            os.close(fd)
            return moved

        child_in, child_out = high(child_in), high(child_out)
        script = f'exec "$0" "$@" 3<&{child_in} 4>&{child_out} {child_in}<&- {child_out}>&-'
        self.log = open(Path(self.profile) / "chromium.log", "wb")
        self.proc = subprocess.Popen(["/bin/bash", "-c", script, exe, *FLAGS, f"--user-data-dir={self.profile}",
                                      "about:blank"], pass_fds=(child_in, child_out), stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        os.close(child_in)
        os.close(child_out)
        self._buf, self._id, self.events = b"", 0, []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=True)

    def _recv(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._in], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise EOFError("Chromium closed the DevTools pipe (see chromium.log in its profile)")
            self._buf += chunk
        message, self._buf = self._buf.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, *, session: bool = False) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._recv(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, session=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def open(self, path: Path, width: int = 1280) -> list[dict]:
        """Load ``path`` at ``width`` CSS pixels; return the events of the load."""
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": 900, "deviceScaleFactor": 1,
                                                         "mobile": False}, session=True)
        self.events = []
        self.call("Page.navigate", {"url": path.resolve().as_uri()}, session=True)
        deadline = time.monotonic() + self.timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(self._recv(deadline))
        self.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        return list(self.events)

    def screenshot(self) -> bytes:
        w, h = self.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        shot = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                    "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}},
                         session=True)
        return base64.b64decode(shot["data"])

    def close(self) -> None:
        try:
            self.call("Browser.close")
            self.proc.wait(timeout=15)
        except Exception:  # noqa: BLE001 - tearing down: make sure the process we started ends
            self.proc.kill()
            self.proc.wait(timeout=15)
        finally:
            os.close(self._in)
            os.close(self._out)
            self.log.close()
            shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    exe = _chromium()
    if exe is None:
        pytest.skip("Chromium not found (looked for " + ", ".join(CANDIDATES) + " and $POISONLAB_CHROMIUM): "
                    "install Debian's chromium (apt-get install chromium); .ci/run installs it")
    b = Chromium(exe)
    yield b
    b.close()


@pytest.fixture(scope="module")
def run_record():
    """A real run: BadNets on digits, scanned, retrained, inspected and monitored (small and fast)."""
    from poisonlab.runs import Runner, Scenario

    scenario = Scenario.model_validate({
        "name": "browser-test", "dataset": "digits",
        "model": {"architecture": "mlp", "train": {"epochs": 3, "lr": 0.003, "batch_size": 64}},
        "attacks": [{"name": "badnets", "params": {"poison_rate": 0.1, "target": 0, "value": 1.0}}],
        "defenses": {"data": ["activation_clustering", "spectral"],
                     "model": [{"name": "neural_cleanse", "params": {"epochs": 2}}],
                     "inference": [{"name": "strip", "params": {"false_positive_rate": 0.05}}]},
        "retrain": True, "seeds": [0]})
    return Runner().run(scenario)


def gate_record_of_a_backdoored_model(folder: Path) -> dict:
    """The release gate (the example policy without Neural Cleanse) on a BadNets digits model,
    against the clean one as the released baseline: a blocked release."""
    from poisonlab.runs.gate import gate_record, run_gate
    from tests.monitoring._digits_models import digits, saved
    from tests.runs.test_gate import fast_policy

    clean, bad = saved(folder, "clean"), saved(folder, "badnets")
    return gate_record(run_gate(bad, fast_policy(), trusted=digits().test, baseline=clean))


def retraining_run_record() -> dict:
    """Two rounds of continuous retraining on digits with a coordinated group (small and fast)."""
    from poisonlab.runs import Runner, Scenario

    return Runner().run(Scenario.model_validate({
        "name": "browser-retraining", "dataset": "digits",
        "retraining": {"rounds": 2, "honest_contributors": 5, "samples_per_contributor": 10, "group_size": 2,
                       "target_class": 1, "flip_to": 7, "min_verified": 5}}))


@pytest.fixture(scope="module")
def pages(tmp_path_factory, run_record):
    folder = tmp_path_factory.mktemp("html-report")
    records = {"run": run_record, "grid": grid_record(), "scan": scan_record(), "model_scan": model_scan_record(),
               "reproduction": reproduction_record(), "gate": gate_record_of_a_backdoored_model(folder),
               "retraining": retraining_run_record()}
    out = {}
    for kind, record in records.items():
        path = folder / f"report-{kind}.html"
        path.write_text(build_html(record), encoding="utf-8")
        out[kind] = (record, path)
    return out


def _problems(events: list[dict], page: Path) -> list[str]:
    """Console errors and warnings, uncaught exceptions, failed loads and any request that is
    not the page itself or inline data."""
    found = []
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
            found.append(f"console.{p['type']}: {[a.get('value') for a in p.get('args', [])]}")
        elif method == "Runtime.exceptionThrown":
            found.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
            found.append(f"log {p['entry']['level']}: {p['entry'].get('text')}")
        elif method == "Network.loadingFailed":
            found.append(f"failed load: {p.get('errorText')}")
        elif method == "Network.requestWillBeSent":
            url = p.get("request", {}).get("url", "")
            if not url.startswith("data:") and url != page.resolve().as_uri():
                found.append(f"request to {url}")
    return found


IMAGES_JS = """[...document.images].map(i => ({alt: i.alt, complete: i.complete, w: i.naturalWidth,
                                             h: i.naturalHeight}))"""
NUMBERS_JS = """[...document.querySelectorAll('[data-value]')].map(e => ({key: e.dataset.key || null,
                 raw: e.dataset.value, text: e.textContent}))"""
OVERFLOW_JS = """(() => { const W = document.documentElement.clientWidth; const out = [];
  for (const e of document.querySelectorAll('body *')) {
    if (e.closest('.table-wrap, pre, details:not([open])')) continue;
    const r = e.getBoundingClientRect();
    if (r.width && (r.right > W + 1 || r.left < -1)) out.push(e.tagName + '.' + e.className + ' ' + Math.round(r.right));
  }
  return {scroll: document.documentElement.scrollWidth, width: W, out: out.slice(0, 5)}; })()"""


@pytest.mark.parametrize("kind", ["run", "grid", "scan", "model_scan", "reproduction", "gate", "retraining"])
def test_page_loads_cleanly_and_shows_the_records_numbers(browser, pages, kind, tmp_path_factory):
    record, path = pages[kind]
    events = browser.open(path)
    assert _problems(events, path) == []
    images = browser.evaluate(IMAGES_JS)
    assert images, "a report always has a plot or picture"
    assert [i["alt"] for i in images if not (i["complete"] and i["w"] > 0 and i["h"] > 0)] == []
    numbers = [n for n in browser.evaluate(NUMBERS_JS) if n["key"]]
    assert len(numbers) >= 3
    for n in numbers:
        value = resolve(record, n["key"])
        shown = n["text"].strip()
        assert json.loads(n["raw"]) == value, n
        assert shown in (pct(value), num(value), seconds(value)), n
    for width in (1280, 390):  # a laptop and a phone: nothing sticks out of the window
        browser.open(path, width=width)
        layout = browser.evaluate(OVERFLOW_JS)
        assert layout["scroll"] <= layout["width"] and layout["out"] == [], (width, layout)
    browser.open(path)
    png = browser.screenshot()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    (path.parent / f"report-{kind}.png").write_bytes(png)


def test_run_report_headline_equals_the_record(browser, pages):
    record, path = pages["run"]
    res = record["results"]
    browser.open(path)
    head = browser.evaluate("document.getElementById('verdict').innerText")
    cards = browser.evaluate("""Object.fromEntries([...document.querySelectorAll('#verdict .card')].map(c =>
        [c.querySelector('.card-label').innerText.trim().toLowerCase(), c.innerText]))""")
    poisoned, clean, retrained = res["train"]["poisoned"], res["train"]["clean"], res["retrain"]
    assert pct(poisoned["attack_success_rate"]) in cards["attack success rate"]
    assert pct(poisoned["clean_model_asr"]) in cards["attack success rate"]  # beside the clean model's
    assert pct(poisoned["clean_accuracy"]) in cards["clean accuracy (poisoned model)"]
    assert pct(clean["clean_accuracy"]) in cards["clean accuracy (poisoned model)"]
    assert pct(retrained["attack_success_rate"]) in cards["asr after retraining"]
    q = res["scan"]["evaluation"]["combined (quarantine)"]
    assert pct(q["recall"]) in cards["poisons quarantined"] and pct(q["precision"]) in cards["poisons quarantined"]
    nc = res["inspect"]["neural_cleanse"]
    assert nc["verdict"] in head
    strip = res["monitor"]["strip"]
    assert f"flags {pct(strip['frr'])} of clean inputs" in head
    shown = browser.evaluate("""Object.fromEntries([...document.querySelectorAll('#verdict [data-key]')].map(
        e => [e.dataset.key, e.textContent]))""")
    for key in ("/results/train/poisoned/clean_accuracy", "/results/train/poisoned/attack_success_rate",
                "/results/train/poisoned/clean_model_asr", "/results/train/clean/clean_accuracy",
                "/results/retrain/attack_success_rate"):
        assert shown[key] == pct(resolve(record, key)), key
    # the most suspicious samples are thumbnails that decode, each with who flagged it
    tiles = browser.evaluate("""[...document.querySelectorAll('.gallery.samples .tile')].map(t =>
        ({w: t.querySelector('img').naturalWidth, text: t.innerText}))""")
    assert len(tiles) == len(res["scan"]["evidence"]["top"]) and all(t["w"] > 0 for t in tiles)
    assert all("flagged by" in t["text"] for t in tiles)


def test_screenshot_artifact(browser, pages, tmp_path_factory):
    _, path = pages["run"]
    browser.open(path)
    png = browser.screenshot()
    folder = tmp_path_factory.mktemp("artifacts")
    (folder / "report.png").write_bytes(png)
    target = REPO / "poisonlab-out" / "test-artifacts"
    try:
        target.mkdir(parents=True, exist_ok=True)
        (target / "report.png").write_bytes(png)
        (target / "report.html").write_bytes(path.read_bytes())
    except OSError:  # a read-only checkout: the copy under the pytest folder is the artifact
        pass
    from PIL import Image

    with Image.open(folder / "report.png") as im:
        assert im.width >= 1200 and im.height > 2000  # the whole page, not the first screen

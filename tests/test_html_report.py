"""The HTML report: a pure function of the run records, self-contained, and right in a real browser.

The browser test builds a real (smoke) comparison with `flame-bench compare ... --html`, opens the page in headless
Chromium with networking off, drives it over the Chrome DevTools protocol (on a pipe: `--remote-debugging-pipe`,
stdlib only), checks the table against the run records, clicks a bio and a win-rate item and finds their facts,
evidence and judge reply in the DOM, and saves a screenshot. It skips when Chromium is not installed.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from flame_bench.core.records import RunRecord, load_run, write_run
from flame_bench.core.registry import TASKS
from flame_bench.reports.comparison import SystemResult, deltas, table_columns
from flame_bench.reports.figure import figure
from flame_bench.reports.html import (
    axis_limits,
    comparison_html,
    figure_points,
    page_data,
    report_name,
    runs_html,
)
from flame_bench.scoring.retrieval import KnowledgeSource
from flame_bench.world.source import WorldSource

INSTALL = "apt-get install -y chromium"  # Debian's Chromium (CI: .ci/run -> make browser)


# -- synthetic records ---------------------------------------------------------------------------------------------
def _bio(i: str, group: str, facts: list[tuple[str, bool, list[str]]], output: str) -> dict[str, Any]:
    n_sup = sum(ok for _, ok, _ in facts)
    return {"id": i, "instruction": f"Tell me a bio of {i}.", "group": group, "output": output,
            "abstained": not facts, "n_facts": len(facts), "n_supported": n_sup,
            "factscore": n_sup / len(facts) if facts else None,
            "facts": [{"text": t, "supported": ok, "evidence": ev} for t, ok, ev in facts]}


def _win(i: str, output: str, ref: str, raw: str | None, swapped: bool, pref: float, score: float) -> dict[str, Any]:
    return {"id": i, "instruction": f"Question {i}?", "fact_based": i == "q1", "output": output,
            "reference_output": ref, "raw": raw, "swapped": swapped, "preference": pref, "model_score": score,
            "judged": raw is not None}


def _header(task: str, model: str, metric: str, value: float, ci: list[float], breakdown: dict) -> dict[str, Any]:
    return {"task": {"name": task, "version": "1"}, "model": {"name": model, "sha256": "x"}, "primary_metric": metric,
            "metric_info": [{"key": metric, "display": metric, "percent": True}], "metrics": {metric: value},
            "confidence_intervals": {metric: ci}, "counts": {"items": 2}, "breakdown": breakdown,
            "judge": {"reference": "baseline"}, "created": "2026-01-01T00:00:00"}


EVIL = "</script><script>window.pwned=1</script> & <b>"


@pytest.fixture()
def systems(tmp_path: Path) -> list[SystemResult]:
    runs = tmp_path / "runs"
    bios = {
        "baseline": [_bio("Ann", "rare", [("Ann was born in Paris.", True, ["Ann#0"])], "Ann was born in Paris."),
                     _bio("Bob", "frequent", [("Bob is a chemist.", False, ["Bob#0", "Bob#1"])], "Bob is a chemist.")],
        "flame": [_bio("Ann", "rare", [("Ann was born in Paris.", True, ["Ann#0"]),
                                       ("Ann is a poet.", False, ["Ann#1"])], "Ann was born in Paris. " + EVIL),
                  _bio("Bob", "frequent", [("Bob is a chemist.", False, ["Bob#0", "Bob#1"])], "Bob is a chemist.")],
    }
    wins = {
        "baseline": [_win("q1", "A1", "A1", None, False, 1.5, 0.5), _win("q2", "B1", "B1", None, True, 1.5, 0.5)],
        "flame": [_win("q1", "A2", "A1", "Output (2) is better. Preferred: 2", False, 2.0, 1.0),
                  _win("q2", "B2", "B1", "Preferred: tie", True, 1.5, 0.5)],
    }
    out = []
    for name, fs, wr in (("baseline", 0.5, 0.5), ("flame", 0.25, 0.75)):
        r = SystemResult(name, name, tmp_path, [])
        r.runs = {
            "alpaca_winrate": write_run(runs, f"alpaca_winrate__{name}", _header(
                "alpaca_winrate", name, "win_rate", wr, [wr - 0.1, wr + 0.1],
                {"fact-based": {"win_rate": wr}, "not fact-based": {"win_rate": 0.5}}), wins[name]),
            "factscore_bio": write_run(runs, f"factscore_bio__{name}", _header(
                "factscore_bio", name, "factscore", fs, [0.0, fs + 0.2],
                {"rare": {"factscore": fs}, "frequent": {"factscore": 0.0}}), bios[name]),
        }
        out.append(r)
    return out


KNOWLEDGE = KnowledgeSource({"Ann": ["Ann was born in Paris in 1901.", "Ann wrote novels."],
                             "Bob": ["Bob is a baker.", "Bob lives in Rome."]})


def _embedded(page: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="flame-data">(.*?)</script>', page, re.S)
    assert m, "the page embeds its data"
    return json.loads(m.group(1))


def test_page_is_a_self_contained_pure_function_of_the_records(systems: list[SystemResult]) -> None:
    dl = deltas(systems, seed=0)
    page = comparison_html(systems, dl, "demo", KNOWLEDGE)
    assert page == comparison_html(systems, dl, "demo", KNOWLEDGE)  # no clock, no randomness
    data = _embedded(page)
    assert data == json.loads(json.dumps(page_data(systems, dl, KNOWLEDGE)))
    # nothing to fetch: no src/href/url(), no import, and a CSP that forbids any request
    assert not re.search(r"\b(src|href)\s*=|url\(|@import|fetch\(|XMLHttpRequest", page)
    assert "default-src 'none'" in page and "http://www.w3.org/2000/svg" in page  # (an SVG namespace, not a fetch)
    # a model output cannot close the data's script block or inject markup
    assert EVIL not in page and page.count("</script>") == 2
    bio = {it["id"]: it for it in data["tasks"]["factscore_bio"]["items"]}
    assert bio["Ann"]["e"][1]["o"].endswith(EVIL) and bio["Ann"]["d"] and not bio["Bob"]["d"]
    assert bio["Ann"]["e"][1]["f"] == [["Ann was born in Paris.", 1, ["Ann#0"]], ["Ann is a poet.", 0, ["Ann#1"]]]
    assert data["passages"] == {"Ann#0": "Ann was born in Paris in 1901.", "Ann#1": "Ann wrote novels.",
                                "Bob#0": "Bob is a baker.", "Bob#1": "Bob lives in Rome."}
    win = {it["id"]: it for it in data["tasks"]["alpaca_winrate"]["items"]}
    assert win["q1"]["g"] == "fact-based" and win["q1"]["d"] and not win["q2"]["d"]
    assert win["q2"]["e"][1] == {"s": 0.5, "o": "B2", "r": "B1", "raw": "Preferred: tie", "sw": True, "p": 1.5,
                                 "j": True}
    # the table: values and paired deltas as comparison_markdown shows them
    assert data["table"]["flame"]["Win rate"]["value"] == 0.75
    assert data["table"]["flame"]["Bio FS"]["delta"] == dl["flame"]["Bio FS"].__dict__
    assert '<td data-column="Bio FS" data-value="0.25"><span class="v">25.0</span>' in page
    assert data["task_order"] == ["alpaca_winrate", "factscore_bio"]  # the columns' order


def test_without_the_knowledge_source_the_page_shows_evidence_ids_only(systems: list[SystemResult]) -> None:
    data = _embedded(comparison_html(systems, deltas(systems), "demo"))  # no source_spec: cannot reopen
    assert data["passages"] == {} and "do not record their source" in data["passages_note"]
    assert data["tasks"]["factscore_bio"]["items"][0]["e"][0]["f"][0][2] == ["Ann#0"]


def test_report_page_of_plain_runs(systems: list[SystemResult]) -> None:
    records = [rec for r in systems for rec in r.runs.values()]
    data = _embedded(runs_html(records, KNOWLEDGE))
    assert data["systems"] == ["baseline", "flame"] and data["table"]["baseline"]["Bio FS"]["delta"] is None
    assert data["table"]["flame"]["Bio FS"]["ci"] == [0.0, pytest.approx(0.45)]
    assert report_name(records) == report_name(records[::-1]).replace("flame_baseline", "baseline_flame")


def test_figure_has_whiskers_and_honest_axes(systems: list[SystemResult], tmp_path: Path) -> None:
    xlabel, ylabel, points = figure_points(systems)  # type: ignore[misc]
    assert "over baseline" in xlabel and "Bio FS" in ylabel
    flame = points[1]
    assert (flame.x, flame.y) == (75.0, 25.0)
    assert flame.x_ci == pytest.approx((65.0, 85.0)) and flame.y_ci == pytest.approx((0.0, 45.0))
    lo, hi = axis_limits([50.2, 50.4])  # a 0.2-point spread is never zoomed into
    assert hi - lo >= 10 and lo <= 45.2 and hi >= 55.4
    lo, hi = axis_limits([0.0, 45.0, 70.0, -3.0])  # whiskers beyond 0 stay whole
    assert lo <= -8 and hi >= 75
    assert axis_limits([0.0, 20.0])[0] > -5  # no pointless negative range for data at 0
    assert figure(systems, tmp_path / "fig.png") and (tmp_path / "fig.png").read_bytes()[:4] == b"\x89PNG"


# -- the real thing: a smoke comparison in headless Chromium --------------------------------------------------------
class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: the browser reads
    NUL-terminated JSON commands on fd 3 and writes replies and events on fd 4). Stdlib only, no port."""

    def __init__(self, exe: str, profile: Path, log: Path):
        cmd_r, self.cmd_w = os.pipe()
        self.ev_r, ev_w = os.pipe()
        far = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (cmd_r, ev_w)]  # never 3 or 4 themselves
        os.close(cmd_r)
        os.close(ev_w)
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--mute-audio", f"--user-data-dir={profile}",
                 # networking off: no name resolves, every proxied request goes nowhere
                 "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
                 "--remote-debugging-pipe", "about:blank"]
        self.log = log.open("wb")
        self.proc = subprocess.Popen(["bash", "-c", f'exec "$0" "$@" 3<&{far[0]} 4>&{far[1]}', exe, *flags],
                                     pass_fds=far, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        for fd in far:
            os.close(fd)
        self.buf, self.events, self.next_id, self.log_path = b"", [], 0, log

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply from chromium")
            if select.select([self.ev_r], [], [], left)[0]:
                chunk = os.read(self.ev_r, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"chromium exited: {self.log_path.read_text(errors='replace')[-2000:]}")
                self.buf += chunk
        msg, _, self.buf = self.buf.partition(b"\0")
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60) -> dict[str, Any]:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self.cmd_w, data):]
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._read(deadline))

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            self.send("Browser.close", timeout=10)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self.cmd_w, self.ev_r):
            os.close(fd)
        self.log.close()


class Tab:
    def __init__(self, browser: Chromium):
        self.b = browser
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def send(self, method: str, params: dict | None = None) -> dict[str, Any]:
        return self.b.send(method, params, self.session)

    def js(self, expression: str) -> Any:
        res = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in res:
            raise AssertionError(f"page script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click (pressed + released) at the element's centre, after scrolling it into view."""
        where = self.js(f"""(() => {{
            const e = document.querySelector({json.dumps(selector)});
            if (!e) return null;
            e.scrollIntoView({{block: "center"}});
            const r = e.getBoundingClientRect(), x = r.x + r.width / 2, y = r.y + Math.min(r.height / 2, 10);
            const hit = document.elementFromPoint(x, y);
            return [x, y, !!hit && (hit === e || e.contains(hit))];
        }})()""")
        assert where, f"nothing matches {selector}"
        x, y, on_target = where
        assert on_target, f"{selector} is covered at its centre"
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium; checked before the smoke world is built, so a machine without it skips at once."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip(f"headless Chromium is not installed; install it with `{INSTALL}` (Debian)")
    return exe


def _pct(v: float | None, percent: bool) -> str:
    return "-" if v is None else f"{100 * v:.1f}" if percent else f"{v:.2f}"


def test_comparison_page_in_headless_chromium(chromium: str, smoke_world: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    env = {**os.environ, "FLAME_BENCH_RESULTS": str(results), "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "flame_bench.cli", "compare", "baseline", "flame", "--world",
                           str(smoke_world), "--html", "--quiet"], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (page_path,) = (results / "comparisons").glob("baseline_vs_flame__*.html")
    saved = json.loads(page_path.with_suffix(".json").read_text())
    runs: dict[str, dict[str, RunRecord]] = {s["name"]: {t: load_run(p) for t, p in s["runs"].items()}
                                             for s in saved["systems"]}
    samples = {n: {t: {x["id"]: x for x in rec.samples()} for t, rec in r.items()} for n, r in runs.items()}

    browser = Chromium(chromium, tmp_path / "profile", tmp_path / "chromium.log")
    try:
        tab = Tab(browser)
        tab.send("Network.enable")
        tab.send("Network.emulateNetworkConditions", {"offline": True, "latency": 0, "downloadThroughput": -1,
                                                      "uploadThroughput": -1})
        tab.send("Page.enable")
        tab.send("Emulation.setDeviceMetricsOverride", {"width": 1400, "height": 1000, "deviceScaleFactor": 1,
                                                        "mobile": False})
        start = time.monotonic()
        tab.send("Page.navigate", {"url": page_path.as_uri()})
        browser.wait_event("Page.loadEventFired")
        while not tab.js("document.body && document.body.getAttribute('data-ready')"):
            assert time.monotonic() - start < 30, "the page's script never finished"
            time.sleep(0.02)
        load_s = time.monotonic() - start
        script_ms = tab.js("window.flameRenderMs")
        assert tab.js("window.pwned === undefined")

        # the table, cell by cell, against the run records (values) and the saved paired deltas
        cols = table_columns([TASKS.get(t) for t in runs["baseline"]])
        cells = tab.js("""Array.from(document.querySelectorAll('#table3 tbody tr')).map(tr => [tr.dataset.system,
            Array.from(tr.querySelectorAll('td')).map(td => [td.dataset.column, td.querySelector('.v').textContent,
            (td.querySelector('.sub') || {}).textContent || ''])])""")
        assert [c[0] for c in cells] == ["baseline", "flame"]
        for name, row in cells:
            assert [c[0] for c in row] == [c.label for _, c in cols]
            for (task, col), (_, value, sub) in zip(cols, row, strict=True):
                assert value == _pct(runs[name][task.name].header["metrics"].get(col.metric), col.percent), (name, col)
                d = saved["deltas"].get(name, {}).get(col.label)
                if d:
                    k = 100 if col.percent else 1
                    star = "*" if d["low"] > 0 or d["high"] < 0 else ""
                    assert sub == f"{k * d['value']:+.1f} [{k * d['low']:+.1f}, {k * d['high']:+.1f}]{star}"
                else:
                    assert sub == ""
        assert tab.js("document.querySelectorAll('#plot circle.dot').length") == 2
        assert tab.js("document.querySelectorAll('#plot path.whisker').length") >= 2

        # one bio: every system's facts with their verdicts; a click on a fact shows its evidence passages' text
        bios = samples["flame"]["factscore_bio"]
        bio_id = max(bios, key=lambda i: (len(bios[i]["facts"]), i))
        assert bios[bio_id]["facts"], "the smoke comparison has a bio with facts"
        tab.click(f'.item[data-task="factscore_bio"][data-id="{bio_id}"]')
        assert tab.js("document.getElementById('detail').dataset.id") == bio_id
        for name in runs:
            shown = tab.js(f"""Array.from(document.querySelectorAll('#detail .col[data-system="{name}"] li.fact'))
                .map(li => [li.querySelector('.ftext').textContent, li.classList.contains('supported')])""")
            want = [[f["text"], bool(f["supported"])] for f in samples[name]["factscore_bio"][bio_id]["facts"]]
            assert shown == want, name
            out = tab.js(f"""document.querySelector('#detail .col[data-system="{name}"] .out').textContent""")
            assert out == samples[name]["factscore_bio"][bio_id]["output"]
        fact = bios[bio_id]["facts"][0]
        first = '#detail .col[data-system="flame"] li.fact:first-child'
        assert tab.js(f"document.querySelector('{first} .evidence').hidden")
        tab.click(first)
        assert not tab.js(f"document.querySelector('{first} .evidence').hidden")
        passages = tab.js(f"""Array.from(document.querySelectorAll('{first} .passage'))
            .map(p => [p.dataset.passage, p.lastChild.textContent])""")
        pages = WorldSource.open(smoke_world).knowledge.pages
        texts = {p.id: p.text for ps in pages.values() for p in ps}
        assert passages == [[pid, texts[pid]] for pid in fact["evidence"]] and passages

        # one win-rate item the judge was asked about: both outputs, its raw reply and the flip-back
        wins = samples["flame"]["alpaca_winrate"]
        win_id = next(i for i, s in wins.items() if s["raw"])
        tab.click(f'.item[data-task="alpaca_winrate"][data-id="{win_id}"]')
        got = tab.js("""(() => { const c = document.querySelector('#detail .col[data-system="flame"]');
            return [document.querySelector('#detail .out.ref').textContent, c.querySelector('.out').textContent,
                    c.querySelector('pre.raw').textContent, c.querySelector('.flip').dataset.swapped,
                    c.querySelector('.flip').textContent]; })()""")
        s = wins[win_id]
        assert got[:4] == [s["reference_output"], s["output"], s["raw"], "1" if s["swapped"] else "0"]
        flip = "2 \u2212 pref" if s["swapped"] else "pref \u2212 1"
        assert got[4].endswith(f"{s['preference']:g} \u2192 flip-back: score = {flip} = {s['model_score']:g}")

        # filters: one task, one group, then only the items where the systems' per-item scores differ
        def choose(select: str, value: str) -> None:
            tab.js(f"""(() => {{ const s = document.getElementById('{select}'); s.value = {json.dumps(value)};
                       s.dispatchEvent(new Event('change')); }})()""")

        def count() -> int:
            return int(tab.js("document.getElementById('count').dataset.count"))

        base_bio = samples["baseline"]["factscore_bio"]
        choose("f-task", "factscore_bio")
        assert count() == len(bios)
        group = bios[bio_id]["group"]
        choose("f-group", group)
        assert count() == sum(s["group"] == group for s in bios.values())
        choose("f-group", "")
        tab.click("#f-differ")
        assert tab.js("document.getElementById('f-differ').checked")
        assert count() == sum(base_bio[i]["factscore"] != bios[i]["factscore"] for i in bios)
        tab.click("#f-differ")
        choose("f-task", "")
        tab.click(f'.item[data-task="factscore_bio"][data-id="{bio_id}"]')
        tab.click(first)

        shot = tab.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        (tmp_path / "report.png").write_bytes(base64.b64decode(shot["data"]))
        assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"

        # nothing but the page itself was requested
        urls = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
        assert urls and all(u.startswith(("file:", "data:", "about:")) for u in urls), urls
    finally:
        browser.close()
    size = page_path.stat().st_size
    metrics = {"page_bytes": size, "load_s": round(load_s, 3), "script_ms": round(script_ms, 1),
               "items": sum(len(t) for t in samples["flame"].values()), "screenshot": str(tmp_path / "report.png")}
    (tmp_path / "render.json").write_text(json.dumps(metrics))
    print(f"html report: {metrics}")
    assert size < 2_000_000 and load_s < 20

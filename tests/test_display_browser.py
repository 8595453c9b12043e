"""The patient chart and the reprs, rendered in a real browser (headless Chromium).

The page is built from what two sessions may see (a physician and billing), opened in
Chromium through Playwright, and checked: no console errors, each chart section holds the
values the chart computed, an injected HTML payload stays text, and a value masked for
billing is not anywhere in billing's DOM. A screenshot is saved to ``test-artifacts/``.

Skips (with the reason) only when Playwright or a Chromium binary is not installed; CI
installs both (see ``.ci/run``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ehr_sandbox.display.format import esc
from ehr_sandbox.sandbox import Sandbox

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
MARKER = "zq-masked-note-7731"
PAYLOAD = f"<img src=x onerror=\"document.title='pwned'\">{MARKER}"


def _chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="needs Playwright (pip install playwright)"
    )
    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium binary (apt-get install chromium; .ci/run does it)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=exe,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


@pytest.fixture(scope="module")
def clinic():
    sb = Sandbox.generate(patients=3, seed=5, years=3)
    doc = sb.login("dr.patel")
    pid = doc.search("Patient").first()["id"]
    cond = doc.search("Condition", patient=f"Patient/{pid}").first()
    assert cond is not None
    cond["note"] = [{"text": PAYLOAD}]
    doc.update(cond, reason="chart test: a note with markup")
    return sb, pid


def _page(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.html"
    path.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(name)}</title></head>"
        f"<body>{body}</body></html>",
        encoding="utf-8",
    )
    return path


def _open(browser, path: Path):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, errors


def test_physician_chart_renders_every_section_with_its_values(browser, clinic, tmp_path):
    sb, pid = clinic
    s = sb.login("dr.patel")
    chart = s.chart(pid)
    body = chart.to_html() + s._repr_html_() + sb._repr_html_()
    body += s.search("Observation", patient=f"Patient/{pid}").sort("-date")._repr_html_()
    page, errors = _open(browser, _page(tmp_path, "physician-chart", body))
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "chart-physician.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert errors == []
    assert page.title() == "physician-chart"  # the payload's onerror never ran
    assert page.locator("img").count() == 0  # ... because it is text, not an element
    for section in chart.sections:
        loc = page.locator(f"section[data-section='{section.name}'] tbody tr")
        assert loc.count() == len(section.rows), section.name
        if section.rows:
            first = loc.nth(0).locator("td")
            cells = [first.nth(k).inner_text().strip() for k in range(first.count())]
            expected = [" ".join(str(section.rows[0][c]).split()) for c in section.columns]
            assert cells == expected, section.name
    problems = page.locator("section[data-section='problems']").inner_text()
    assert MARKER in problems and "<img" in problems  # shown, as text
    assert page.locator("figure.ehr-trend svg").count() == 1
    banner = page.locator(".ehr-banner").inner_text()
    assert chart.banner["name"] in banner and "physician" in banner


def test_masked_values_are_not_in_billings_dom(browser, clinic, tmp_path):
    sb, pid = clinic
    billing = sb.login("billing.davis")
    chart = billing.chart(pid)
    assert len(chart.problems) > 0  # billing sees the problem list ...
    page, errors = _open(browser, _page(tmp_path, "billing-chart", chart.to_html()))
    page.screenshot(path=str(ARTIFACTS / "chart-billing.png"), full_page=True)
    assert errors == []
    assert MARKER not in page.content()  # ... but not the note the policy masks for billing
    assert page.locator("section[data-section='problems'] tbody tr").count() == len(chart.problems)
    # and nothing of the sections billing may not read
    assert page.locator("section[data-section='notes'] tbody tr").count() == 0
    assert page.locator("section[data-section='results'] tbody tr").count() == 0

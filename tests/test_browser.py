"""The reports in a real browser: headless Chromium (playwright) at 1280 px renders a run report and a
compare report with no console error, every figure loaded and visible, and no text running out of its
box or off the page (wide tables scroll inside their own box, by design). Screenshots of the whole
pages are saved to $PLATFORM_SIM_TEST_ARTIFACTS (when set; CI keeps them) or the test's tmp_path.

Needs `pip install playwright` and a Chromium: $PLATFORM_SIM_CHROMIUM, a `chromium` on the PATH (the
Debian package), or playwright's own (`python -m playwright install chromium`). Skipped without them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import platform_sim as ps

pytestmark = pytest.mark.slow

WIDTH = 1280

# Run in the page: the page's width, every image, and every element whose text overflows its own box or
# the viewport. Table cells and code inside a .wide box are exempt: that box scrolls horizontally.
INSPECT = """
() => {
  const vw = window.innerWidth;
  const text = ['P', 'LI', 'H1', 'H2', 'H3', 'H4', 'FIGCAPTION', 'SUMMARY', 'CAPTION'];
  const out = {scrollWidth: document.documentElement.scrollWidth, images: [], overflow: []};
  for (const img of document.querySelectorAll('img')) {
    const r = img.getBoundingClientRect();
    const style = getComputedStyle(img);
    out.images.push({alt: img.alt, complete: img.complete, naturalWidth: img.naturalWidth, width: r.width,
                     height: r.height, right: r.right,
                     visible: style.visibility !== 'hidden' && style.display !== 'none' && r.width > 0 && r.height > 0});
  }
  for (const el of document.querySelectorAll('h1,h2,h3,h4,p,li,figcaption,caption,summary,td,th,a,code,dd')) {
    const scrolls = el.closest('.wide') !== null;
    if (scrolls && !text.includes(el.tagName)) continue;
    const r = el.getBoundingClientRect();
    if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) {
      out.overflow.push(`${el.tagName} "${el.textContent.slice(0, 60)}": ${el.scrollWidth} > ${el.clientWidth} px`);
    } else if (!scrolls && r.right > vw + 1) {
      out.overflow.push(`${el.tagName} "${el.textContent.slice(0, 60)}" ends at ${r.right} px`);
    }
  }
  return out;
}
"""


def _chromium() -> str | None:
    given = os.environ.get("PLATFORM_SIM_CHROMIUM")
    if given:
        return given
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.fixture(scope="module")
def browser():
    # imported here, not at collection: without playwright the default run deselects these tests
    # (they are slow) instead of reporting them skipped
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        except sync_api.Error as exc:
            pytest.skip(f"no Chromium for playwright: {str(exc).splitlines()[0]}")
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """A run report of a design with looks, one of a platform, and a calibrated compare report."""
    folder = tmp_path_factory.mktemp("pages")
    rar = ps.run("pioneer_rar", "pioneer_alternative", n_sims=200, seed=1).report(folder / "run_report.html")
    platform = ps.run("pioneer_platform", "pioneer_alternative", n_sims=40, seed=1).report(
        folder / "platform_report.html"
    )
    comparison = ps.compare(
        ["pioneer_rar", "lungmap_umbrella"],
        ["pioneer_alternative", "pioneer_null"],
        n_sims=100,
        seed=1,
        null_scenario="pioneer_null",
        target_fwer=0.2,
    )
    compare = comparison.report(folder / "compare_report.html")
    return {"run_report": rar, "platform_report": platform, "compare_report": compare}


@pytest.fixture
def artifacts(tmp_path) -> Path:
    folder = Path(os.environ.get("PLATFORM_SIM_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize("name", ["run_report", "platform_report", "compare_report"])
def test_report_renders_cleanly_at_1280px(browser, pages, artifacts, name):
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(pages[name].as_uri(), wait_until="load")
    found = page.evaluate(INSPECT)
    shot = artifacts / f"{name}_{WIDTH}px.png"
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    assert problems == []
    assert found["scrollWidth"] <= WIDTH, "the page scrolls sideways"
    assert len(found["images"]) >= 3
    for image in found["images"]:
        assert image["complete"] and image["naturalWidth"] > 0, f"figure not loaded: {image['alt']}"
        assert image["visible"] and image["width"] >= 300, f"figure not visible: {image}"
        assert image["right"] <= WIDTH, f"figure wider than the page: {image}"
    assert found["overflow"] == []
    assert shot.stat().st_size > 10_000


def test_the_checks_catch_a_broken_page(browser, tmp_path):
    """The same inspection finds a figure that does not load, a word wider than the page and a script error."""
    broken = tmp_path / "broken.html"
    broken.write_text(
        '<!DOCTYPE html><html><body style="max-width: 600px"><p>' + "x" * 400 + "</p>"
        '<figure><img src="data:image/png;base64,AAAA" alt="broken"></figure>'
        "<script>console.error('boom')</script></body></html>"
    )
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.goto(broken.as_uri(), wait_until="load")
    found = page.evaluate(INSPECT)
    page.close()
    assert "boom" in problems
    assert found["scrollWidth"] > WIDTH and any(o.startswith("P ") for o in found["overflow"])
    assert found["images"][0]["naturalWidth"] == 0

"""What every page must pass, as people use it (issue 20): axe-core (npm, tools/axe) finds no WCAG
2.1 A/AA violation, nothing scrolls sideways on a 375 px phone, and each page is photographed at
375×812 and 1280×800 into .cache/screenshots/ (listed in the README).

``a_person_can_use(page, name)`` does all three on the page as it stands, and puts the viewport
back as it was.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path

from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "tools" / "axe"
SCREENSHOTS = ROOT / ".cache" / "screenshots"
PHONE = {"width": 375, "height": 812}
LAPTOP = {"width": 1280, "height": 800}
#: The rules of WCAG 2.0 and 2.1, levels A and AA (what the issue asks for; "best-practice" rules
#: are advice, not the standard).
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@cache
def axe_source() -> str:
    """axe.min.js from tools/axe's pinned node_modules, installed by ``npm ci`` on first use."""
    script = AXE / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed once to install tools/axe/node_modules (axe-core)"
        done = subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=AXE,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return script.read_text()


def axe_violations(page: Page) -> list[str]:
    """axe-core's WCAG 2.1 AA violations on the page as it is now, one line each. The engine is
    evaluated through the browser's debugging protocol, which the pages' CSP does not govern."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    found = page.evaluate(
        """async (tags) => {
        const result = await axe.run(document, { runOnly: { type: "tag", values: tags } });
        return result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} at ` +
            v.nodes.map((n) => n.target.join(" ")).join(", "));
    }""",
        WCAG_AA,
    )
    return found


def sideways_scroll(page: Page) -> int:
    """How many CSS pixels the page is wider than its viewport (0: nothing scrolls sideways)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def widest(page: Page) -> str:
    """The element that sticks out furthest on the right, for a message that names it."""
    return page.evaluate("""() => {
        let worst = null, right = document.documentElement.clientWidth;
        for (const el of document.querySelectorAll("body *")) {
            const r = el.getBoundingClientRect();
            if (r.right > right + 0.5) { right = r.right; worst = el; }
        }
        return worst ? `${worst.tagName.toLowerCase()}#${worst.id}.${worst.className} (${Math.round(right)} px)` : "";
    }""")


def a_person_can_use(page: Page, name: str) -> None:
    """axe finds nothing, a phone scrolls only down, and the page is photographed at both sizes."""
    was = page.viewport_size
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        page.set_viewport_size(PHONE)
        assert sideways_scroll(page) <= 0, (
            f"{name}: wider than a 375 px phone by {sideways_scroll(page)} px: {widest(page)}"
        )
        violations = axe_violations(page)
        assert violations == [], f"{name}: axe-core finds:\n" + "\n".join(violations)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-375x812.png"), full_page=True)
        page.set_viewport_size(LAPTOP)  # the same document, laid out wider: axe's rules read the DOM
        page.screenshot(path=str(SCREENSHOTS / f"{name}-1280x800.png"), full_page=True)
    finally:
        if was:
            page.set_viewport_size(was)


def focus_ring_contrast(page: Page) -> float:
    """The contrast of the focused element's ring against what is behind it (WCAG 1.4.11: ≥ 3)."""
    return page.evaluate("""() => {
        const el = document.activeElement;
        const style = getComputedStyle(el);
        if (style.outlineStyle === "none" || parseFloat(style.outlineWidth) < 2) return 0;
        const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
        const lum = ([r, g, b]) => {
            const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
            return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
        };
        let bg = null;
        for (let n = el.parentElement; n && !bg; n = n.parentElement) {
            const c = rgb(getComputedStyle(n).backgroundColor);
            if (c.length >= 3 && (c.length < 4 || c[3] > 0)) bg = c;
        }
        const a = lum(rgb(style.outlineColor)), b = lum(bg || [255, 255, 255]);
        return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    }""")

"""`python -m copyjit explain --html`: the page, opened in a real browser
(headless Chromium, Debian's `chromium`), after its script has run: what it
shows, and that its links go from a source line to its trace and from a
guard to its bridge. A screenshot is kept in tests/artifacts/ (not in git).

Skipped only when chromium is missing and COPYJIT_REQUIRE_CHROMIUM is not
set; .ci/run installs chromium and sets it, so CI cannot skip silently."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
EVENTS = ROOT / "tests" / "programs" / "events.py"
ARTIFACTS = ROOT / "tests" / "artifacts"
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
                   "wbr"})


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("COPYJIT_REQUIRE_CHROMIUM"):
        pytest.fail("COPYJIT_REQUIRE_CHROMIUM is set but chromium is not installed "
                    "(apt-get install chromium)")
    pytest.skip("chromium is not installed (apt-get install chromium; "
                "COPYJIT_REQUIRE_CHROMIUM=1 makes this a failure)")


def _browse(*args: str) -> str:
    done = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--user-data-dir=" + str(ARTIFACTS / "chromium-profile"), *args],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Element:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Element | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element] = []
        self.parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def find(self, tag: str) -> list[Element]:
        found = [child for child in self.children if child.tag == tag]
        for child in self.children:
            found += child.find(tag)
        return found


class Dom(HTMLParser):
    """The page as a tree, with every element by id and every link."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.root = Element("#root", {}, None)
        self.current = self.root
        self.ids: dict[str, Element] = {}
        self.links: list[tuple[str, Element]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(element)
        if "id" in element.attrs:
            self.ids[element.attrs["id"]] = element
        if tag == "a" and "href" in element.attrs:
            self.links.append((element.attrs["href"], element))
        if tag not in _VOID:
            self.current = element

    def handle_endtag(self, tag: str) -> None:
        node: Element | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        node: Element | None = self.current
        while node is not None:
            node.parts.append(data)
            node = node.parent


@pytest.fixture(scope="module")
def page() -> Path:
    _chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    out = ARTIFACTS / "explain-events.html"
    done = subprocess.run([sys.executable, "-m", "copyjit", "explain", "--threshold", "1", "--html", str(out),
                           str(EVENTS)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "100 3233 6000 5150\n"  # the program's output; the report went to the page
    return out


def test_the_page_needs_no_network(page: Path) -> None:
    html = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html


def test_what_the_browser_shows(page: Path) -> None:
    dom = Dom(_browse("--dump-dom", page.as_uri()))
    body = dom.root.find("body")[0]
    assert body.attrs.get("data-js") == "ready"  # the page's script ran
    assert dom.ids["counted"].text == "5 hot loops on this page, 2 compiled"
    assert dom.ids["summary"].text.startswith("5 hot loops, 2 compiled, 3 not compiled.")
    # Every link inside the page goes somewhere.
    for href, _ in dom.links:
        assert href.startswith("#") and href[1:] in dom.ids, href
    # The loops not compiled, with their reasons; the aborting source line
    # is marked and links to its loop.
    text = body.text
    assert "not compiled: item assignment to a dict; at line 7, STORE_SUBSCR" in text
    assert "not compiled: the loop runs too few iterations per entry" in text
    row = dom.ids["src-tests-programs-events-py-7"]
    assert row.attrs["class"] == "aborted" and "d[i] = i" in row.text
    [why] = [a for a in row.find("a") if "why" in a.attrs.get("class", "")]
    assert dom.ids[why.attrs["href"][1:]].attrs["class"] == "loop not-compiled"


def _loop_key(dom: Dom, function: str) -> str:
    [key] = [i for i, e in dom.ids.items() if e.tag == "section" and f"({function})" in e.find("h2")[0].text]
    return key


def test_a_source_line_links_to_its_trace_with_hit_counts(page: Path) -> None:
    dom = Dom(_browse("--dump-dom", page.as_uri()))
    key = _loop_key(dom, "branchy")
    row = dom.ids["src-tests-programs-events-py-15"]  # `t += i`, in the trace
    assert row.attrs["class"] == "traced"
    hits = int(row.find("td")[0].text.replace(",", ""))
    assert hits > 50  # the trace's iterations
    [code] = [a for a in row.find("a")]
    target = dom.ids[code.attrs["href"][1:]]
    assert code.attrs["href"].startswith(f"#{key}-trace-op-")
    assert "binary.i(" in target.text and "'add'" in target.text and "line 15" in target.text
    assert f"{hits:,}×" in target.text
    # Its uops and machine code, folded under the op.
    assert "_ADD_INT" in target.find("pre")[0].text and "jno" in target.find("pre")[0].text


def test_a_guard_links_to_its_bridge(page: Path) -> None:
    dom = Dom(_browse("--dump-dom", page.as_uri()))
    key = _loop_key(dom, "branchy")
    bridged = [(href, a) for href, a in dom.links if re.fullmatch(f"#{key}-bridge-[0-9]+", href)]
    assert len(bridged) == 1
    href, link = bridged[0]
    row = link.parent.parent  # td, tr: the exit's row
    assert row.tag == "tr" and row.attrs["id"].startswith(f"{key}-exit-")
    cells = [td.text for td in row.find("td")]
    assert cells[1] == "16" and cells[3] == "side exit" and "branch.i(" in cells[4]
    bridge = dom.ids[href[1:]]
    assert "bridge 1, from exit" in bridge.find("h3")[0].text
    assert "17 entries" in bridge.find("h3")[0].text
    # Followed in the browser, the link unfolds the bridge's code.
    first_op = next(e for i, e in dom.ids.items() if i.startswith(href[1:] + "-op-")
                    and "line 17" in e.text)
    opened = Dom(_browse("--dump-dom", page.as_uri() + "#" + first_op.attrs["id"]))
    details = opened.ids[first_op.attrs["id"]].find("details")[0]
    assert "open" in details.attrs


def test_a_screenshot(page: Path) -> None:
    shot = ARTIFACTS / "explain-events.png"
    shot.unlink(missing_ok=True)
    _browse("--window-size=1300,1800", f"--screenshot={shot}", page.as_uri())
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000
    print(f"screenshot: {shot}")

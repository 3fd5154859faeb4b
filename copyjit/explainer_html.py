"""`python -m copyjit explain --html OUT.html`: the report as one self-contained
page (inline CSS and JavaScript, nothing fetched).

    source lines, with hit counts ──link──> the ops of the trace made from them
    each op ──> its uops and machine code (folded)
    each exit (guard) ──link──> its bridge, or its stub; a bridge ──> its exit

Hit counts are the native counters explain reads: a trace's line shows the
trace's iterations, a bridge's its entries, an exit the times it was taken.
Every id is derived from the loop's key (LoopReport.key), so links are
stable for a given program.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from copyjit.explainer import Code, LoopReport, Place, TraceLine, _short, _source, _trace_lines, _why_text

if TYPE_CHECKING:
    from collections.abc import Iterable

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 1.5em 3em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; } h3 { font-size: 1em; }
code, pre, .src td { font: 12.5px/1.35 ui-monospace, "DejaVu Sans Mono", monospace; }
pre { margin: 0.2em 0 0.6em; white-space: pre; overflow-x: auto; }
table { border-collapse: collapse; }
th, td { padding: 1px 0.6em; text-align: left; vertical-align: top; }
th { border-bottom: 1px solid #bbb; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.src td.code a { color: inherit; text-decoration: none; }
.src tr.traced td.code a { border-bottom: 1px dotted #2a7; }
.src tr.traced td.code { background: #eefaf1; }
.src tr.aborted td.code { background: #fdecec; }
.src td.hits { color: #2a7; } .src td.ln { color: #999; }
.why { color: #b22; } .ok { color: #185; }
.loop { border-top: 2px solid #ddd; padding-top: 0.3em; }
.op { margin: 0.15em 0; }
.op summary.head { display: flex; gap: 1em; align-items: baseline; }
.op .head .ln { color: #999; min-width: 4.5em; }
.op .head .hits { color: #2a7; min-width: 7em; text-align: right; }
.op .head .uops { color: #999; font-size: 0.9em; }
.op .head code { color: #222; }
.src td.code { white-space: pre; }
details > summary { cursor: pointer; color: #555; }
.asm { background: #f7f7f7; padding: 0.3em 0.6em; }
:target, .flash { background: #fff3b0 !important; }
.stub .head code { color: #777; }
#legend { color: #555; max-width: 60em; }
"""

# Opens the folded code a link points into, so that following a link from a
# source line or a guard always shows its target; marks the page as ready
# (the test checks that the script ran).
_JS = """
function reveal(id) {
  var target = id && document.getElementById(id);
  if (!target) return;
  for (var node = target; node; node = node.parentElement) {
    if (node.tagName === 'DETAILS') node.open = true;
  }
  var inner = target.querySelector('details');
  if (inner) inner.open = true;
  target.classList.add('flash');
  setTimeout(function () { target.classList.remove('flash'); }, 1500);
}
window.addEventListener('hashchange', function () { reveal(location.hash.slice(1)); });
document.addEventListener('DOMContentLoaded', function () {
  reveal(location.hash.slice(1));
  var all = document.getElementById('toggle-all');
  all.addEventListener('click', function () {
    var open = all.dataset.open !== 'yes';
    document.querySelectorAll('details').forEach(function (d) { d.open = open; });
    all.dataset.open = open ? 'yes' : 'no';
    all.textContent = open ? 'fold all code' : 'unfold all code';
  });
  var loops = document.querySelectorAll('section.loop').length;
  var compiled = document.querySelectorAll('section.loop.compiled').length;
  document.getElementById('counted').textContent =
    loops + ' hot loops on this page, ' + compiled + ' compiled';
  document.body.dataset.js = 'ready';
});
"""


def render(reports: list[LoopReport]) -> str:
    """The whole page."""
    compiled = sum(r.compiled for r in reports)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>copyjit explain</title>",
        f"<style>{_CSS}</style><script>{_JS}</script></head><body>",
        "<h1>copyjit explain</h1>",
        f'<p id="summary">{len(reports)} hot loops, {compiled} compiled, '
        f"{len(reports) - compiled} not compiled. <span id=\"counted\"></span></p>",
        '<p id="legend">Source lines of hot loops, with hit counts (the iterations of the trace that runs '
        "the line; for a bridge, its entries). Green lines are in a trace: click one for its ops, uops "
        "and machine code. Red lines stopped a recording. In a trace's exits, a guard links to its "
        'bridge. <button id="toggle-all" type="button">unfold all code</button></p>',
        _index(reports),
    ]
    parts += _sources(reports)
    parts += [_loop(report) for report in reports]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _index(reports: list[LoopReport]) -> str:
    rows = ["<table id=\"loops\"><tr><th>loop</th><th>state</th><th class=\"num\">entries</th>"
            "<th class=\"num\">iterations</th><th class=\"num\">bridges</th></tr>"]
    for r in reports:
        state = '<span class="ok">compiled</span>' if r.compiled else \
            f'<span class="why">not compiled: {escape(_why_text(r.why))}</span>'
        rows.append(f'<tr><td><a href="#{r.key}">{escape(str(r.place))}</a></td><td>{state}</td>'
                    f'<td class="num">{r.entries if r.compiled else ""}</td>'
                    f'<td class="num">{r.iterations if r.compiled else ""}</td>'
                    f'<td class="num">{len(r.bridges) if r.compiled else ""}</td></tr>')
    rows.append("</table>")
    return "\n".join(rows)


# --- source lines ------------------------------------------------------------


def _line_id(filename: str, line: int) -> str:
    return f"src-{_slug(_short(filename))}-{line}"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text)


def _sources(reports: list[LoopReport]) -> list[str]:
    """Per file, its hot loops' lines: each with the trace (or the abort) it is in."""
    files: dict[str, list[LoopReport]] = {}
    for report in reports:
        files.setdefault(report.place.filename, []).append(report)
    return [_source_table(filename, loops) for filename, loops in files.items()]


def _source_table(filename: str, loops: list[LoopReport]) -> str:
    # line -> (hits, the first place in a trace made from it); line -> abort
    traced: dict[int, tuple[int, str]] = {}
    aborted: dict[int, LoopReport] = {}
    for report in loops:
        for made, hits in _codes(report):
            for op_id, place in _first_ops(report, made):
                if place.filename != filename or place.line is None:
                    continue  # an op of a function inlined from elsewhere
                line = place.line
                best = traced.get(line)
                if best is None or hits > best[0]:
                    traced[line] = (hits, op_id)
        why = report.why
        if not report.compiled and why is not None and why.line is not None and why.filename == filename:
            aborted[why.line] = report
    wanted: set[int] = set()
    for report in loops:
        wanted |= set(range(report.span[0], report.span[1] + 1))
    wanted |= set(aborted)
    rows = [f'<h2>{escape(_short(filename))}</h2><table class="src">']
    for line in sorted(wanted):
        text = escape(_raw_line(filename, line))
        gutter, cls, link, note = "", "", f"#{_line_id(filename, line)}", ""
        if line in traced:
            count, op_id = traced[line]
            gutter, cls, link = f"{count:,}", "traced", f"#{op_id}"
        if line in aborted:
            report = aborted[line]
            cls = "aborted"
            note = f'<a class="why" href="#{report.key}">{escape(_why_text(report.why))}</a>'
        rows.append(f'<tr id="{_line_id(filename, line)}" class="{cls}"><td class="hits num">{gutter}</td>'
                    f'<td class="ln num">{line}</td><td class="code"><a href="{link}">{text}</a></td>'
                    f"<td>{note}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _raw_line(filename: str, line: int) -> str:
    """The line as written (indentation kept), without its newline."""
    import linecache

    return linecache.getline(filename, line).rstrip("\n")


def _codes(report: LoopReport) -> Iterable[tuple[Code, int]]:
    """The trace (with its iterations) and the bridges (with their entries)."""
    if report.trace is not None:
        yield report.trace, report.iterations
    for bridge in report.bridges:
        yield bridge, bridge.entries or 0


def _code_id(report: LoopReport, made: Code) -> str:
    if made is report.trace:
        return f"{report.key}-trace"
    return f"{report.key}-bridge-{report.bridges.index(made) + 1}"


def _groups(made: Code) -> list[tuple[str, Place | None, list[str]]]:
    """The machine code in runs of one origin: (origin, where it was
    recorded, lines of uops and instructions)."""
    groups: list[tuple[str, Place | None, list[str]]] = []
    uop = -1
    for inst in made.instructions:
        if not groups or groups[-1][0] != inst.origin or groups[-1][1] != inst.place:
            groups.append((inst.origin, inst.place, []))
            uop = -1
        if inst.uop != uop:
            uop = inst.uop
            groups[-1][2].append(f"#{uop} {inst.uop_text}")
        groups[-1][2].append(f"    {inst.text}")
    return groups


def _first_ops(report: LoopReport, made: Code) -> list[tuple[str, Place]]:
    """(id of the op group, where it was recorded) for the first group of each source line."""
    seen: set[tuple[str, int | None]] = set()
    found = []
    for number, (_, place, _) in enumerate(_groups(made)):
        if place is not None and (place.filename, place.line) not in seen:
            seen.add((place.filename, place.line))
            found.append((f"{_code_id(report, made)}-op-{number}", place))
    return found


# --- loops -----------------------------------------------------------------------


def _loop(report: LoopReport) -> str:
    state = "compiled" if report.compiled else "not-compiled"
    out = [f'<section class="loop {state}" id="{report.key}">',
           f"<h2>loop at {escape(str(report.place))}</h2>",
           f"<p><code>{escape(report.place.source)}</code> (bytecode {report.dst}..{report.src})</p>"]
    if not report.compiled:
        out.append(f'<p class="why">not compiled: {escape(_why_text(report.why))}</p>')
        why = report.why
        if why is not None and why.line is not None and why.filename:
            out.append(f'<p>line <a href="#{_line_id(why.filename, why.line)}">{why.line}</a>: '
                       f"<code>{escape(_source(why.filename, why.line))}</code></p>")
    if report.compiled and report.why is not None:
        out.append(f"<p>compiled after recordings that failed: {escape(_why_text(report.why))}</p>")
    for dropped in report.dropped:
        out.append(f"<p>a trace was dropped: {escape(dropped)}</p>")
    if report.trace is not None:
        out.append(f'<p class="ok">compiled: {report.entries:,} native entries, {report.iterations:,} '
                   f"iterations, {report.trace.size:,} bytes, {len(report.bridges)} bridges</p>")
        out.append(_exits(report))
        out.append(_code(report, report.trace))
        for bridge in report.bridges:
            out.append(_code(report, bridge))
    out.append("</section>")
    return "\n".join(out)


def _exits(report: LoopReport) -> str:
    rows = ['<h3>exits</h3><table class="exits"><tr><th class="num">exit</th><th class="num">taken</th>'
            "<th>line</th><th>kind</th><th>guard</th><th>then</th></tr>"]
    for ex in report.exits:
        if ex.bridge is not None:
            then = f'<a href="#{report.key}-bridge-{ex.bridge + 1}">bridge {ex.bridge + 1}</a>'
        elif ex.why_no_bridge is not None:
            then = f'<span class="why">no bridge: {escape(_why_text(ex.why_no_bridge))}</span>'
        else:
            then = f'<a href="#{report.key}-stub-{ex.number}">the interpreter</a>'
        line = "" if ex.place.line is None else \
            f'<a href="#{_line_id(ex.place.filename, ex.place.line)}">{ex.place.line}</a>'
        rows.append(f'<tr id="{report.key}-exit-{ex.number}"><td class="num">{ex.number}</td>'
                    f'<td class="num">{"?" if ex.taken is None else f"{ex.taken:,}"}</td><td>{line}</td>'
                    f'<td>{"leaves the loop" if ex.normal else "side exit"}</td>'
                    f"<td><code>{escape(ex.guard)}</code></td><td>{then}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _code(report: LoopReport, made: Code) -> str:
    code_id = _code_id(report, made)
    is_trace = made is report.trace
    hits = report.iterations if is_trace else (made.entries or 0)
    unit = "iterations" if is_trace else "entries"
    title = "trace" if is_trace else \
        (f'bridge {report.bridges.index(made) + 1}, from <a href="#{report.key}-exit-{made.exit_number}">'
         f"exit {made.exit_number}</a>")
    out = [f'<div class="code" id="{code_id}"><h3>{title}: {hits:,} {unit}, {made.size:,} bytes at '
           f"{made.address:#x}</h3>",
           f"<details><summary>recorded trace ({len(made.recorded) - 1} ops)</summary><pre>"
           f"{escape(_trace_text(made.recorded))}</pre></details>",
           f"<details><summary>optimized trace ({len(made.optimized) - 1} ops)</summary><pre>"
           f"{escape(_trace_text(made.optimized))}</pre></details>",
           _bridge_exits(made),
           f"<p>the optimized ops, each with its uops and machine code ({len(made.instructions):,} "
           "instructions):</p>"]
    for number, (origin, place, lines) in enumerate(_groups(made)):
        ids = [f"{code_id}-op-{number}"]
        if origin.startswith("exit ") and ": its stub" in origin and is_trace:
            ids.append(f"{report.key}-stub-{origin.split()[1].rstrip(':')}")
        anchors = "".join(f'<span id="{extra}"></span>' for extra in ids[1:])
        where, count = "", ""
        if place is not None and place.line is not None:
            where = f'<a class="ln" href="#{_line_id(place.filename, place.line)}">line {place.line}</a>'
            count = f"{hits:,}×"
        cls = "op" if place is not None else "op stub"
        uops = sum(1 for text in lines if text.startswith("#"))
        out.append(f'<div class="{cls}" id="{ids[0]}">{anchors}<details><summary class="head">'
                   f'<span class="ln">{where}</span><span class="hits">{count}</span>'
                   f'<code>{escape(origin)}</code><span class="uops">{uops} uops</span></summary>'
                   f'<pre class="asm">{escape(chr(10).join(lines))}</pre></details></div>')
    out.append("</div>")
    return "\n".join(out)


def _bridge_exits(made: Code) -> str:
    """A bridge's own exits: where each resumes, and how often it was taken."""
    if not made.exits:
        return ""
    rows = ['<table class="exits"><tr><th class="num">exit</th><th class="num">taken</th><th>line</th>'
            "<th>kind</th><th>guard</th></tr>"]
    for ex in made.exits:
        taken = "?" if ex.taken is None else f"{ex.taken:,}"
        rows.append(f'<tr><td class="num">{ex.number}</td><td class="num">{taken}</td>'
                    f"<td>{ex.place.line}</td>"
                    f'<td>{"leaves the loop" if ex.normal else "side exit"}</td>'
                    f"<td><code>{escape(ex.guard)}</code></td></tr>")
    rows.append("</table>")
    return "<p>its exits:</p>" + "\n".join(rows)


def _trace_text(lines: list[TraceLine]) -> str:
    return "\n".join(_trace_lines(lines))

#!/usr/bin/env python3
"""Open a report.html in a real browser (headless Chromium, Debian's `chromium` package) and fail on a
broken page: an image that did not decode or has no size on screen, an image whose alt text, title or drawn
text (its titles, labels and legend, kept in the PNG's text chunks) reads nan/None, a table with no rows, an
empty row, a cell that reads or contains nan/None, a table wider than its section that does not scroll inside it
with its scrollbar in a 1400 x 900 window, tables that do not sort on a header click and filter by
the box above them, or an interactive chart that draws nothing, does not redraw when a control changes, or draws
NaN.

    python scripts/check_report_browser.py reports/report.html [--screenshot /tmp/report.png]

The check runs inside the page: a copy of the HTML gets a small script that, on the load event, walks
the DOM and writes its findings as JSON into a <pre id="browser-check">; `chromium --dump-dom` prints
the DOM after load, and this script reads the JSON back. Exit status 0 = sound page, 1 = problems,
2 = no browser."""

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WINDOW = "1400,900"  # a laptop's browser window: tables must fit it or scroll inside it
PROBE = """<script>
window.addEventListener("load", () => {
  const problems = [];
  const missing = /\\b(nan|NaN|NAN|None|undefined)\\b/;  // a number that was not there, printed as text
  // a PNG's text chunks (tEXt, iTXt): the figure's titles, labels and legend (peftbench.report.figures._save)
  const pngText = src => {
    if (!src.startsWith("data:image/png;base64,")) return [];
    const b = atob(src.slice(22)), out = [];
    const u32 = at => ((b.charCodeAt(at) << 24) | (b.charCodeAt(at + 1) << 16) | (b.charCodeAt(at + 2) << 8) | b.charCodeAt(at + 3)) >>> 0;
    for (let at = 8; at + 8 <= b.length; ) {
      const size = u32(at), kind = b.slice(at + 4, at + 8);
      if (kind === "tEXt" || kind === "iTXt") out.push(b.slice(at + 8, at + 8 + size).replace(/\\0/g, " "));
      if (kind === "IEND") break;
      at += 12 + size;
    }
    return out;
  };
  const images = [...document.images];
  images.forEach((im, i) => {
    const name = im.alt || `image ${i + 1}`;
    if (!im.complete || im.naturalWidth === 0) problems.push(`${name}: image did not load or decode`);
    else if (im.getBoundingClientRect().width < 10) problems.push(`${name}: image has no size on the page`);
    [["alt text", im.alt], ["title", im.title], ...pngText(im.getAttribute("src") || "").map(t => ["drawn text", t])]
      .filter(([, text]) => missing.test(text))
      .forEach(([where, text]) => problems.push(`${name}: ${where} reads "${text.slice(0, 160)}"`));
  });
  const tables = [...document.querySelectorAll("table")];
  let rows = 0;
  tables.forEach((t, i) => {
    const name = t.caption ? t.caption.textContent.trim() : `table ${i + 1}`;
    const body = [...t.querySelectorAll("tbody tr")];
    rows += body.length;
    if (!t.querySelectorAll("thead th").length) problems.push(`${name}: no header`);
    if (!body.length) problems.push(`${name}: no rows`);
    body.forEach((r, j) => {
      const cells = [...r.cells].map(c => c.textContent.trim());
      if (cells.every(c => !c)) problems.push(`${name}: row ${j + 1} is empty`);
      const bad = cells.filter(c => /^(null|inf|-inf)$/.test(c) || missing.test(c));
      if (bad.length) problems.push(`${name}: row ${j + 1} has ${bad.join(", ")}`);
    });
  });
  // a table fits its section or scrolls sideways inside it, in a box whose scrollbar is on screen (a box taller
  // than the window puts it below the fold: the right-hand columns look cut off)
  if (document.documentElement.scrollWidth > window.innerWidth + 1)
    problems.push(`the page is ${document.documentElement.scrollWidth} px wide in a ${window.innerWidth} px window`);
  tables.forEach((t, i) => {
    const name = t.caption ? t.caption.textContent.trim() : `table ${i + 1}`;
    const section = t.closest("section") || document.body;
    const room = section.getBoundingClientRect().width, wide = Math.round(t.getBoundingClientRect().width);
    if (wide <= room + 1) return;
    let box = t.parentElement;
    while (box && box !== section && !/auto|scroll/.test(getComputedStyle(box).overflowX)) box = box.parentElement;
    if (!box || box === section) problems.push(`${name}: ${wide} px wide in a ${Math.round(room)} px section, and no scrolling box`);
    else if (box.getBoundingClientRect().width > room + 1) problems.push(`${name}: its scrolling box is wider than its section`);
    else if (box.clientHeight > window.innerHeight)
      problems.push(`${name}: scrolls sideways, but its scrollbar is ${box.clientHeight} px down, below a ${window.innerHeight} px window`);
  });
  // the tables are explorable: a header click reorders the rows (a second click reverses them), the filter
  // box keeps only matching rows; tried on the first table where a click changes the order
  const order = t => JSON.stringify([...t.tBodies[0].rows].map(r => r.textContent));
  let sorted = null, filtered = null;
  for (const t of tables.filter(t => t.tBodies[0] && t.tBodies[0].rows.length > 1)) {
    const before = order(t);
    const th = [...t.querySelectorAll("thead th")].find(h => { h.click(); return order(t) !== before; });
    if (!th) continue;
    const once = order(t);
    th.click();
    sorted = {table: t.caption ? t.caption.textContent.trim() : "", column: th.textContent.trim(),
              reversed: order(t) !== once, sort: th.getAttribute("aria-sort"), ascending: JSON.parse(once)};
    const box = t.parentNode.querySelector("input.filter");
    const first = t.tBodies[0].rows[0].cells[0].textContent.trim();
    if (box) {
      box.value = first;
      box.dispatchEvent(new Event("input"));
      const shown = [...t.tBodies[0].rows].filter(r => !r.hidden);
      filtered = {query: first, shown: shown.length, of: t.tBodies[0].rows.length,
                  ok: shown.length >= 1 && shown.every(r => r.textContent.includes(first))};
      box.value = "";
      box.dispatchEvent(new Event("input"));
    }
    break;
  }
  if (!sorted) problems.push("no header click reordered the rows of any table (report_tables.js not working)");
  else if (!sorted.reversed) problems.push(`${sorted.table}: a second click on "${sorted.column}" did not reverse the order`);
  if (sorted && !(filtered && filtered.ok)) problems.push(`${sorted.table}: the filter box did not keep the matching rows`);
  // the interactive charts (report_explore.js): each draws marks, redraws for every option of every control, and
  // no drawing holds NaN or undefined (a number that was not there)
  const charts = [...document.querySelectorAll(".explore")].map((box, i) => {
    const name = `interactive chart ${i + 1} (${box.dataset.chart})`, svg = box.querySelector("svg");
    const seen = {chart: box.dataset.chart, marks: box.querySelectorAll("svg circle, svg path").length, redrawn: 0};
    if (!svg || !seen.marks) problems.push(`${name}: nothing drawn`);
    const state = () => [...box.querySelectorAll("select")].map(s => s.value).join(", ");
    const bad = new Set();
    const look = () => { if (svg && /NaN|undefined/.test(svg.innerHTML)) bad.add(state()); };
    look();
    box.querySelectorAll("select").forEach(sel => [...sel.options].forEach(opt => {
      const before = svg ? svg.innerHTML : "";
      sel.value = opt.value;
      sel.dispatchEvent(new Event("change"));
      if (svg && svg.innerHTML !== before) seen.redrawn++;
      look();
    }));
    box.querySelectorAll("input[type=checkbox]").forEach(c => { c.click(); look(); c.click(); });
    bad.forEach(at => problems.push(`${name}: the drawing holds NaN or undefined at ${at}`));
    return seen;
  });
  const out = document.createElement("pre");
  out.id = "browser-check";
  out.textContent = JSON.stringify({images: images.length, tables: tables.length, rows, problems, sorted, filtered, charts});
  document.body.appendChild(out);
});
</script>"""


def browser():
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


def _chromium(exe, profile, *args, timeout=120):
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def check(html_path, screenshot=None, min_images=1, min_tables=1):
    """{'images', 'tables', 'rows', 'problems'} as the browser saw the page."""
    exe = browser()
    if exe is None:
        raise FileNotFoundError(f"no headless browser ({', '.join(BROWSERS)}): apt-get install chromium")
    page = Path(html_path).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / page.name  # a copy beside nothing: a relative image path would fail here too
        probe.write_text(re.sub(r"</body>", lambda m: PROBE + m.group(0), page.read_text(), count=1, flags=re.I))
        res = _chromium(exe, Path(tmp) / "profile", f"--window-size={WINDOW}", "--dump-dom", probe.as_uri())
        if screenshot:
            _chromium(
                exe,
                Path(tmp) / "profile",
                f"--screenshot={Path(screenshot).resolve()}",
                "--window-size=1400,9000",
                page.as_uri(),
            )
    found = re.search(r'<pre id="browser-check">(.*?)</pre>', res.stdout, re.S)
    if not found:
        return {
            "images": 0,
            "tables": 0,
            "rows": 0,
            "problems": [
                f"the page did not finish loading in the browser (exit {res.returncode}): {res.stderr[-500:]}"
            ],
        }
    import html

    result = json.loads(html.unescape(found.group(1)))
    if result["images"] < min_images:
        result["problems"].append(f"{result['images']} images, expected at least {min_images}")
    if result["tables"] < min_tables:
        result["problems"].append(f"{result['tables']} tables, expected at least {min_tables}")
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html")
    ap.add_argument("--screenshot", help="also save a PNG of the rendered page (1400 px wide)")
    ap.add_argument("--min-images", type=int, default=1)
    ap.add_argument("--min-tables", type=int, default=1)
    args = ap.parse_args()
    try:
        r = check(args.html, args.screenshot, args.min_images, args.min_tables)
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    print(
        f"{args.html}: {r['images']} images, {r['tables']} tables, {r['rows']} rows in the browser; "
        f"sorted by a click: {r.get('sorted')}; filtered: {r.get('filtered')}; interactive charts: {r.get('charts')}"
    )
    for p in r["problems"]:
        print(f"  BROKEN: {p}")
    return 1 if r["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())

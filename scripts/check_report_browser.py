#!/usr/bin/env python3
"""Open a report.html in a real browser (headless Chromium, Debian's `chromium` package) and fail on a
broken page: an image that did not decode or has no size on screen, a table with no rows, an empty row,
or a cell that reads nan/None.

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
PROBE = """<script>
window.addEventListener("load", () => {
  const problems = [];
  const images = [...document.images];
  images.forEach((im, i) => {
    const name = im.alt || `image ${i + 1}`;
    if (!im.complete || im.naturalWidth === 0) problems.push(`${name}: image did not load or decode`);
    else if (im.getBoundingClientRect().width < 10) problems.push(`${name}: image has no size on the page`);
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
      const bad = cells.filter(c => /^(nan|NaN|None|null|undefined|inf|-inf)$/.test(c));
      if (bad.length) problems.push(`${name}: row ${j + 1} has ${bad.join(", ")}`);
    });
  });
  const out = document.createElement("pre");
  out.id = "browser-check";
  out.textContent = JSON.stringify({images: images.length, tables: tables.length, rows, problems});
  document.body.appendChild(out);
});
</script>"""


def browser():
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


def _chromium(exe, profile, *args, timeout=120):
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           "--hide-scrollbars", f"--user-data-dir={profile}", "--virtual-time-budget=10000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def check(html_path, screenshot=None, min_images=1, min_tables=1):
    """{'images', 'tables', 'rows', 'problems'} as the browser saw the page."""
    exe = browser()
    if exe is None:
        raise FileNotFoundError(f"no headless browser ({', '.join(BROWSERS)}): apt-get install chromium")
    page = Path(html_path).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / page.name          # a copy beside nothing: a relative image path would fail here too
        probe.write_text(re.sub(r"</body>", PROBE + "</body>", page.read_text(), count=1, flags=re.I))
        res = _chromium(exe, Path(tmp) / "profile", "--dump-dom", probe.as_uri())
        if screenshot:
            _chromium(exe, Path(tmp) / "profile", f"--screenshot={Path(screenshot).resolve()}",
                      "--window-size=1400,9000", page.as_uri())
    found = re.search(r'<pre id="browser-check">(.*?)</pre>', res.stdout, re.S)
    if not found:
        return {"images": 0, "tables": 0, "rows": 0,
                "problems": [f"the page did not finish loading in the browser (exit {res.returncode}): {res.stderr[-500:]}"]}
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
    print(f"{args.html}: {r['images']} images, {r['tables']} tables, {r['rows']} rows in the browser")
    for p in r["problems"]:
        print(f"  BROKEN: {p}")
    return 1 if r["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())

// report.html's tables, explorable without a server: click a header to sort by that column (again to reverse),
// type in the box above a table to keep only the rows that contain the text. Embedded by peftbench/report/report.py.
(() => {
  const UNIT = {B: 1, KB: 1e3, MB: 1e6, GB: 1e9, M: 1e6};       // as tables.py prints sizes and counts
  const value = text => {                                      // "1.86 MB" -> 1860000, "47.4 ± 1.2" -> 47.4, "4.2%" -> 4.2
    const m = text.replace(/,/g, "").match(/^\s*(-?[\d.]+(?:e-?\d+)?)\s*(B|KB|MB|GB|M)?\b/);
    const v = m ? parseFloat(m[1]) : NaN;
    return isNaN(v) ? null : v * (UNIT[m[2]] || 1);
  };
  const compare = (a, b) => {                                  // numbers before text, numbers by value
    const x = value(a), y = value(b);
    if (x !== null && y !== null) return x - y;
    if (x !== null || y !== null) return x === null ? 1 : -1;
    return a.localeCompare(b);
  };
  document.querySelectorAll("table").forEach(table => {
    const body = table.tBodies[0];
    if (!body || !table.tHead) return;
    table.tHead.querySelectorAll("th").forEach((th, col) => {
      th.style.cursor = "pointer";
      th.title = "sort by this column";
      th.addEventListener("click", () => {
        const up = th.getAttribute("aria-sort") !== "ascending";
        table.tHead.querySelectorAll("th").forEach(h => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", up ? "ascending" : "descending");
        const text = r => (r.cells[col] ? r.cells[col].textContent.trim() : "");
        [...body.rows].sort((a, b) => (up ? 1 : -1) * compare(text(a), text(b))).forEach(r => body.appendChild(r));
      });
    });
    const box = document.createElement("input");
    box.type = "search";
    box.placeholder = "filter rows";
    box.className = "filter";
    box.style.cssText = "display:block;margin:.3em 0;font:inherit";
    box.addEventListener("input", () => {
      const q = box.value.trim().toLowerCase();
      [...body.rows].forEach(r => { r.hidden = q !== "" && !r.textContent.toLowerCase().includes(q); });
    });
    table.parentNode.insertBefore(box, table);
  });
})();

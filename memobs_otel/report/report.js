// memobs report: sortable tables and the review-queue filter. No network, no data in here.
(function () {
  "use strict";
  function cellValue(row, index, numeric) {
    var cell = row.cells[index];
    if (!cell) return numeric ? 0 : "";
    var raw = cell.getAttribute("data-sort");
    if (raw === null) raw = cell.textContent;
    return numeric ? parseFloat(raw) || 0 : raw.toLowerCase();
  }
  function sortBy(table, th, index) {
    var numeric = th.getAttribute("data-type") === "num";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var headers = table.tHead.rows[0].cells;
    for (var i = 0; i < headers.length; i++) headers[i].removeAttribute("aria-sort");
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, index, numeric), y = cellValue(b, index, numeric);
      var order = x < y ? -1 : x > y ? 1 : 0;
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (th, index) {
      th.addEventListener("click", function () { sortBy(table, th, index); });
    });
  });

  var table = document.getElementById("review-queue");
  var text = document.getElementById("review-filter");
  var signal = document.getElementById("review-signal");
  var count = document.getElementById("review-count");
  if (!table || !text || !signal || !count) return;
  function applyFilter() {
    var needle = text.value.trim().toLowerCase();
    var wanted = signal.value;
    var shown = 0, rows = table.tBodies[0].rows;
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      var signals = (row.getAttribute("data-signals") || "").split(" ");
      var visible = (!wanted || signals.indexOf(wanted) >= 0) &&
        (!needle || row.textContent.toLowerCase().indexOf(needle) >= 0);
      row.classList.toggle("hidden", !visible);
      if (visible) shown++;
    }
    count.textContent = shown + " of " + rows.length + " shown";
    table.setAttribute("data-shown", String(shown));
  }
  text.addEventListener("input", applyFilter);
  signal.addEventListener("change", applyFilter);
  applyFilter();
})();

/* A little vanilla JS; the page stays complete without it (every gate message shown, every row listed). */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // a gate row opens its full reasoning; failed gates start open
  document.querySelectorAll("tr.gate").forEach(function (row) {
    var msg = document.getElementById(row.getAttribute("data-msg"));
    if (!msg) return;
    if (!msg.classList.contains("fold")) msg.classList.add("open");
    row.addEventListener("click", function () { msg.classList.toggle("open"); });
  });

  // a clipped document text shows in full on click
  document.addEventListener("click", function (ev) {
    var t = ev.target.closest && ev.target.closest(".hit .txt");
    if (t) t.classList.toggle("full");
  });

  // the table of every query: filter and pages
  document.querySelectorAll(".qtable").forEach(function (box) {
    var size = parseInt(box.getAttribute("data-page"), 10) || 100;
    var rows = Array.prototype.slice.call(box.querySelectorAll("tbody tr"));
    var input = box.querySelector("input"), pos = box.querySelector(".qpos");
    var page = 0, shown = rows;
    function draw() {
      var pages = Math.max(1, Math.ceil(shown.length / size));
      page = Math.min(Math.max(page, 0), pages - 1);
      rows.forEach(function (r) { r.classList.add("off"); });
      shown.slice(page * size, (page + 1) * size).forEach(function (r) { r.classList.remove("off"); });
      pos.textContent = shown.length ? (page * size + 1) + "\u2013" + Math.min(shown.length, (page + 1) * size) +
        " of " + shown.length : "no match";
    }
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase();
      shown = q ? rows.filter(function (r) { return r.textContent.toLowerCase().indexOf(q) >= 0; }) : rows;
      page = 0; draw();
    });
    box.querySelectorAll("button[data-step]").forEach(function (b) {
      b.addEventListener("click", function () { page += parseInt(b.getAttribute("data-step"), 10); draw(); });
    });
    draw();
  });

  // a link to a query (from the table, or a URL #fragment) opens it
  function openTarget() {
    var el = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
    while (el) {
      if (el.tagName === "DETAILS") el.open = true;
      el = el.parentElement;
    }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
})();

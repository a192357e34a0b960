// Draw each chart from the Plotly figure the page carries as JSON (no inline scripts), on load and after
// htmx swaps part of the page in (the what-if page's results arrive that way).
function drawCharts(root) {
  root.querySelectorAll("[data-figure]:not([data-drawn])").forEach(function (el) {
    var figure = JSON.parse(document.getElementById(el.dataset.figure).textContent);
    el.dataset.drawn = "1";
    Plotly.newPlot(el, figure.data, figure.layout, { responsive: true, displaylogo: false });
  });
}
document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
document.addEventListener("htmx:afterSettle", function (event) { drawCharts(document); });

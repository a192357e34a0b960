// Draw each chart from the Plotly figure the page carries as JSON (no inline scripts).
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-figure]").forEach(function (el) {
    var figure = JSON.parse(document.getElementById(el.dataset.figure).textContent);
    Plotly.newPlot(el, figure.data, figure.layout, { responsive: true, displaylogo: false });
  });
});

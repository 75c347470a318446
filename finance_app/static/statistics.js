// The statistics dashboard's charts, drawn with plotly.js (served by the app) from the
// figures the page embeds as JSON; the same figures are in the tables beside them.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  var labels = JSON.parse(document.getElementById("chart-labels").textContent);
  var config = {displaylogo: false, responsive: true, locale: document.documentElement.lang};
  var layout = function (extra) {
    return Object.assign({margin: {t: 20, r: 10, b: 80, l: 70}, height: 320,
                          xaxis: {automargin: true}, yaxis: {automargin: true},
                          font: {family: "system-ui, 'Noto Sans CJK SC', sans-serif", size: 12},
                          legend: {orientation: "h", y: -0.25}}, extra || {});
  };
  var num = function (values) { return values.map(function (v) { return v === null ? null : Number(v); }); };
  var draw = function (id, traces, extra) {
    var node = document.getElementById(id);
    if (node) { Plotly.newPlot(node, traces, layout(extra), config); node.dataset.drawn = "true"; }
  };
  draw("chart-volume-month", data.by_mode.map(function (m) {
    return {type: "bar", name: m.name, x: m.x, y: num(m.y)};
  }), {barmode: "stack", xaxis: {type: "category", automargin: true}, yaxis: {automargin: true, title: {text: labels.amount_cny}}});
  draw("chart-country", [{type: "bar", x: data.countries.x, y: num(data.countries.y),
                          name: labels.amount_cny}]);
  draw("chart-verified", [{type: "scatter", mode: "lines+markers", x: data.verified.x,
                           y: num(data.verified.y), name: labels.share}],
       {xaxis: {type: "category", automargin: true}, yaxis: {tickformat: ".0%", range: [0, 1.05]}});
  ["financing_kind", "financing_bank"].forEach(function (key) {
    var d = data[key];
    draw("chart-" + key.replace("_", "-"), ["requested", "offered", "lent"].map(function (part) {
      return {type: "bar", name: labels[part], x: d.x, y: num(d[part])};
    }), {barmode: "group"});
  });
  draw("chart-loans", [{type: "bar", x: labels.loans, y: num(data.loans.y),
                        marker: {color: ["#0b5cab", "#9a6700", "#b42318"]}}]);
  draw("chart-insurance", [{type: "bar", x: labels.insurance, y: num(data.insurance.y),
                            marker: {color: ["#0b5cab", "#1c7c3a", "#b42318"]}}]);
})();

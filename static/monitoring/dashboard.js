// Draws the dashboard charts from the rollup series the page embeds (no extra request).
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("dashboard-charts").textContent);
  const activity = [
    { key: "mask_operations", label: "Mask ops", stroke: "#d97706" },
    { key: "unmask_operations", label: "Unmask ops", stroke: "#2563eb" },
    { key: "identifiers", label: "Identifiers", stroke: "#15803d" },
    { key: "requests", label: "Proxied requests", stroke: "#7c3aed" },
    { key: "upstream_errors", label: "Upstream errors", stroke: "#b91c1c" },
  ];

  const compactFormat = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 });
  const compact = (n) => (n == null ? "" : compactFormat.format(n));

  function draw(elementId, series, lines, dateOnly) {
    const element = document.getElementById(elementId);
    if (!element || !window.uPlot) return;
    const options = {
      width: Math.max(element.clientWidth, 300),
      height: 220,
      scales: { x: { time: true } },
      series: [{ value: dateOnly ? "{YYYY}-{MM}-{DD}" : "{YYYY}-{MM}-{DD} {HH}:{mm}" }].concat(
        lines.map((line) => ({ label: line.label, stroke: line.stroke, width: 1.5, spanGaps: true }))
      ),
      axes: [{}, { size: 56, values: (u, ticks) => ticks.map(compact) }],
    };
    const values = [series.t].concat(lines.map((line) => series[line.key]));
    const chart = new uPlot(options, values, element);
    element.dataset.drawn = "true";
    window.addEventListener("resize", () => chart.setSize({ width: Math.max(element.clientWidth, 300), height: 220 }));
  }

  draw("chart-hour", data.hour, activity, false);
  draw("chart-day", data.day, activity, false);
  draw("chart-month", data.month, activity, true);
  draw("chart-latency", data.day, [{ key: "latency_p95_ms", label: "p95 ms", stroke: "#0f766e" }], false);
})();

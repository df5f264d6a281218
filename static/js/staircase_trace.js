// A rater's staircase trace, one chart per task block: the exposure asked for on each trial,
// correct answers as green dots and wrong ones as red crosses (shape and colour both differ),
// and the block's threshold as a dashed line. Data from json_script "trace-data"; Chart.js
// is the vendored UMD build, loaded by a classic script before this module runs.

const CORRECT = "#1a7f4b";
const WRONG = "#c0392b";
const LINE = "#9aa3b2";
const THRESHOLD = "#2d5bd7";

function blockChart(Chart, canvas, block, bounds) {
  const points = block.trace.map(([trial, ms, correct]) => ({ x: trial, y: ms, correct }));
  const values = points.map((p) => p.y);
  const datasets = [
    {
      label: "Exposure",
      data: points,
      stepped: "before",
      borderColor: LINE,
      borderWidth: 1,
      pointStyle: (context) => (context.raw?.correct ? "circle" : "crossRot"),
      pointRadius: (context) => (context.raw?.correct ? 2.5 : 4),
      pointBorderWidth: (context) => (context.raw?.correct ? 1 : 2),
      pointBackgroundColor: (context) => (context.raw?.correct ? CORRECT : WRONG),
      pointBorderColor: (context) => (context.raw?.correct ? CORRECT : WRONG),
    },
  ];
  if (block.threshold !== null) {
    datasets.push({
      label: "Threshold",
      data: [
        { x: points[0].x, y: block.threshold },
        { x: points[points.length - 1].x, y: block.threshold },
      ],
      borderColor: THRESHOLD,
      borderDash: [6, 4],
      borderWidth: 1.5,
      pointRadius: 0,
    });
  }
  return new Chart(canvas, {
    type: "line",
    data: { datasets },
    options: {
      animation: false,
      maintainAspectRatio: false,
      parsing: false,
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            label: (item) =>
              item.dataset.label === "Threshold"
                ? `threshold ${item.raw.y} ms`
                : `trial ${item.raw.x}: ${item.raw.y} ms, ${item.raw.correct ? "correct" : "wrong"}`,
          },
        },
      },
      scales: {
        x: {
          type: "linear",
          title: { display: true, text: "Trial" },
          min: 1,
          max: points[points.length - 1].x,
          ticks: { precision: 0 },
        },
        y: {
          title: { display: true, text: "Exposure (ms)" },
          // Room around the trace, within the staircase's bounds.
          min: Math.max(bounds.floor, Math.floor((Math.min(...values) - 40) / 50) * 50),
          max: Math.min(bounds.ceiling, Math.ceil((Math.max(...values) + 40) / 50) * 50),
        },
      },
    },
  });
}

function drawTraces() {
  const data = document.getElementById("trace-data");
  const Chart = window.Chart;
  if (!data || !Chart) return;
  const traces = JSON.parse(data.textContent);
  const bounds = { floor: traces.floor, ceiling: traces.ceiling };
  for (const block of traces.blocks) {
    const canvas = document.getElementById(block.id);
    if (canvas && block.trace.length) blockChart(Chart, canvas, block, bounds);
  }
}

drawTraces();

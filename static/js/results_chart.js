// The study page's scores chart: each model's bootstrap interval as a floating bar with a dot
// at its score (HYPE_time in ms; HYPE_inf in % error with the 50% chance line). The numbers
// come from the server through json_script ("scores-chart-data"); nothing is computed here.

import { referenceLine } from "./results_reference_line.js";

const INTERVAL = "rgba(45, 91, 215, 0.22)";
const ACCENT = "#2d5bd7";
const INK = "#1d2330";

function draw(canvas, data) {
  const names = data.models.map((m) => m.name);
  const fmt = (value) => `${value.toFixed(1)}${data.unit === "%" ? "%" : " ms"}`;
  const box = canvas.parentElement;
  // One row per model: the canvas grows with the models instead of squashing them.
  box.style.height = `${90 + 46 * names.length}px`;
  const plugins = [];
  if (data.chance !== null) {
    plugins.push(referenceLine({ axis: "x", value: data.chance, label: "chance (50%)" }));
  }
  const highest = Math.max(...data.models.map((m) => m.high));
  return new window.Chart(canvas, {
    type: "bar",
    data: {
      labels: names,
      datasets: [
        {
          type: "bar",
          label: "interval",
          data: data.models.map((m) => [m.low, m.high]),
          backgroundColor: INTERVAL,
          borderColor: ACCENT,
          borderWidth: 1,
          borderSkipped: false,
          barPercentage: 0.55,
          categoryPercentage: 1,
          order: 2,
        },
        {
          type: "line",
          label: "score",
          data: data.models.map((m) => m.estimate),
          showLine: false,
          pointRadius: 6,
          pointHoverRadius: 7,
          pointBackgroundColor: INK,
          pointBorderColor: "#fff",
          pointBorderWidth: 1.5,
          clip: false, // a score of 0 (no rater ever fooled) sits on the axis, still whole
          order: 1,
        },
      ],
    },
    options: {
      indexAxis: "y",
      maintainAspectRatio: false,
      animation: false,
      scales: {
        x: {
          beginAtZero: true,
          // HYPE_inf: always show the chance line, and leave room above it for hyper-real.
          suggestedMax: data.chance !== null ? Math.max(60, highest + 5) : undefined,
          title: { display: true, text: data.label },
          grid: { color: "#e6e9ef" },
        },
        y: { grid: { display: false }, ticks: { font: { size: 13 } } },
      },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            label(item) {
              const model = data.models[item.dataIndex];
              if (item.dataset.label === "score") {
                return `score ${fmt(model.estimate)} (${model.raters} raters)`;
              }
              return `interval ${fmt(model.low)} – ${fmt(model.high)}`;
            },
          },
        },
      },
    },
    plugins,
  });
}

const canvas = document.getElementById("scores-chart");
const source = document.getElementById("scores-chart-data");
if (canvas && source && window.Chart) {
  draw(canvas, JSON.parse(source.textContent));
}

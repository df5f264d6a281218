// The study page's "how many raters" chart: the width of each model's bootstrap interval
// from its first 2, 3, ... completed raters, with the target width as a dashed line (a
// dataset, so that it is named in the legend rather than written over the lines). The
// widths come from the server through json_script ("width-chart-data").

const TARGET = "#5d6677";
const PALETTE = ["#2d5bd7", "#d7632d", "#17803d", "#8a3ffc", "#b3261e", "#007d79"];

function draw(canvas, data) {
  const unit = data.unit === "pp" ? " pp" : " ms";
  const points = data.models.flatMap((m) => m.points);
  const widest = Math.max(data.target, ...points.map((p) => p.y));
  const lastRater = Math.max(3, ...points.map((p) => p.x));
  const target = {
    label: `target: ${data.target}${unit}`,
    data: [
      { x: 2, y: data.target },
      { x: lastRater, y: data.target },
    ],
    borderColor: TARGET,
    backgroundColor: TARGET,
    borderDash: [6, 4],
    borderWidth: 1.5,
    pointRadius: 0,
    pointHoverRadius: 0,
  };
  return new window.Chart(canvas, {
    type: "line",
    data: {
      datasets: data.models.map((model, i) => ({
        label: model.name,
        data: model.points,
        borderColor: PALETTE[i % PALETTE.length],
        backgroundColor: PALETTE[i % PALETTE.length],
        pointRadius: 3,
        tension: 0,
        clip: false, // a point on the axis (a width of 0, the first rater count) stays whole
      })).concat([target]),
    },
    options: {
      maintainAspectRatio: false,
      animation: false,
      parsing: false,
      scales: {
        x: {
          type: "linear",
          min: 2,
          max: lastRater,
          ticks: { precision: 0 },
          title: { display: true, text: "Completed raters" },
          grid: { color: "#e6e9ef" },
        },
        y: {
          beginAtZero: true,
          suggestedMax: widest * 1.1,
          title: { display: true, text: data.axis },
          grid: { color: "#e6e9ef" },
        },
      },
      plugins: {
        legend: { position: "top", align: "end", labels: { boxWidth: 14 } },
        tooltip: {
          filter: (item) => item.dataset !== target,
          callbacks: {
            title: (items) => `${items[0].parsed.x} raters`,
            label: (item) => `${item.dataset.label}: ${item.parsed.y.toFixed(1)}${unit} wide`,
          },
        },
      },
    },
  });
}

const canvas = document.getElementById("width-chart");
const source = document.getElementById("width-chart-data");
if (canvas && source && window.Chart) {
  draw(canvas, JSON.parse(source.textContent));
}

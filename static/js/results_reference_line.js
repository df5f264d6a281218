// A Chart.js plugin that draws one labelled, dashed reference line across the plot, such as
// chance (50%) on the HYPE_inf scores chart. Chart.js has no built-in annotations and the
// annotation plugin is not vendored; a line is a few canvas calls.

export function referenceLine({ axis, value, label, colour = "#5d6677" }) {
  return {
    id: "referenceLine",
    afterDatasetsDraw(chart) {
      const scale = chart.scales[axis];
      if (!scale || value < scale.min || value > scale.max) return;
      const { ctx, chartArea: area } = chart;
      const at = scale.getPixelForValue(value);
      ctx.save();
      ctx.strokeStyle = colour;
      ctx.lineWidth = 1.5;
      ctx.setLineDash([6, 4]);
      ctx.beginPath();
      if (axis === "x") {
        ctx.moveTo(at, area.top);
        ctx.lineTo(at, area.bottom);
      } else {
        ctx.moveTo(area.left, at);
        ctx.lineTo(area.right, at);
      }
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.font = "12px system-ui, sans-serif";
      // On a white box, so that lines running through it do not hide the words.
      const width = ctx.measureText(label).width + 8;
      const [left, top] =
        axis === "x" ? [at + 4, area.top + 2] : [area.right - width - 4, at - 19];
      ctx.fillStyle = "rgba(255, 255, 255, 0.9)";
      ctx.fillRect(left, top, width, 16);
      ctx.fillStyle = colour;
      ctx.textAlign = "left";
      ctx.textBaseline = "middle";
      ctx.fillText(label, left + 4, top + 8);
      ctx.restore();
    },
  };
}

// Plots of the compare and sweep pages, drawn with plotly.js (served from the
// installed plotly package). Data comes as JSON from the dashboard's API.
// Every label is escaped before plotly sees it: plotly reads a few HTML tags
// in labels, and names here come from researchers' parameter sets.
(function () {
  "use strict";

  function esc(value) {
    return String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  // A value on an axis: numbers as they are (a linear axis), anything else escaped (a
  // category axis shows its text, and plotly would read tags in it).
  function axisValue(value) {
    return typeof value === "number" ? value : esc(label(value));
  }

  // A parameter's value in a point; null where the set has no such field (runs made
  // before a field was added to the parameter class), never undefined, which JSON
  // cannot write or read back.
  function param(point, name) {
    var value = point.params[name];
    return value === undefined ? null : value;
  }

  // A value as a tick or legend shows it ("none" for a missing or None value).
  function label(value) {
    return value === null ? "none" : String(value);
  }

  var CONFIG = { responsive: true, displaylogo: false };

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.json(); });
  }

  function comparePlots(container) {
    getJson(container.getAttribute("data-src")).then(function (data) {
      (data.series || []).forEach(function (chart) {
        var box = document.createElement("div");
        box.className = "compare-plot";
        box.setAttribute("data-metric", chart.metric);
        container.appendChild(box);
        var longest = Math.max.apply(null, chart.lines.map(function (line) { return line.x.length; }));
        var traces = chart.lines.map(function (line) {
          return { x: (line.x || []).map(axisValue), y: line.y, name: esc(line.name), mode: "lines+markers", type: "scatter" };
        });
        Plotly.newPlot(box, traces, {
          title: { text: esc(chart.metric) },
          xaxis: { title: { text: "step" }, dtick: longest <= 20 ? 1 : undefined },
          yaxis: { title: { text: esc(chart.metric) } },
          height: 440,
          margin: { t: 50, r: 20, b: 40 },
          legend: { orientation: "h", y: -0.2, yanchor: "top" }
        }, CONFIG);
      });
      container.setAttribute("data-drawn", String((data.series || []).length));
    });
  }

  // -- parallel coordinates, drawn as SVG here (plotly's parcoords needs WebGL and
  //    run-time code generation, which the dashboard's Content-Security-Policy forbids)

  var SVG = "http://www.w3.org/2000/svg";
  var STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

  function colour(t) {
    if (!isFinite(t)) { return "#999"; }
    var x = Math.max(0, Math.min(1, t)) * (STOPS.length - 1);
    var i = Math.min(STOPS.length - 2, Math.floor(x));
    var f = x - i;
    var c = STOPS[i].map(function (v, k) { return Math.round(v + f * (STOPS[i + 1][k] - v)); });
    return "rgb(" + c.join(",") + ")";
  }

  function node(name, attributes, parent) {
    var element = document.createElementNS(SVG, name);
    Object.keys(attributes).forEach(function (k) { element.setAttribute(k, attributes[k]); });
    if (parent) { parent.appendChild(element); }
    return element;
  }

  function text(parent, x, y, value, anchor, cls) {
    var element = node("text", { x: x, y: y, "text-anchor": anchor || "middle", "class": cls || "" }, parent);
    element.textContent = value;
    return element;
  }

  function axis(name, values, numeric) {
    if (numeric) {
      var finite = values.filter(function (v) { return typeof v === "number" && isFinite(v); });
      var low = Math.min.apply(null, finite), high = Math.max.apply(null, finite);
      if (!finite.length) { low = 0; high = 1; }
      return {
        name: name,
        position: function (v) { return high === low ? 0.5 : (v - low) / (high - low); },
        ticks: high === low ? [[0.5, String(low)]] : [[0, String(+low.toPrecision(4))], [1, String(+high.toPrecision(4))]]
      };
    }
    var keys = [];
    values.forEach(function (v) { var k = JSON.stringify(v); if (keys.indexOf(k) < 0) { keys.push(k); } });
    keys.sort();
    var step = keys.length > 1 ? 1 / (keys.length - 1) : 0;
    return {
      name: name,
      position: function (v) { return keys.length > 1 ? keys.indexOf(JSON.stringify(v)) * step : 0.5; },
      ticks: keys.map(function (k, i) { return [keys.length > 1 ? i * step : 0.5, label(JSON.parse(k))]; })
    };
  }

  function parallelCoordinates(container, fields, points, metric) {
    var values = points.map(function (p) { return p.value; });
    var axes = fields.map(function (f) {
      return axis(f.name, points.map(function (p) { return param(p, f.name); }), f.numeric);
    });
    axes.push(axis(metric, values, true));
    var width = Math.max(480, container.clientWidth || 900), height = 380;
    var left = 70, right = 90, top = 50, bottom = 30;
    var svg = node("svg", { width: width, height: height, viewBox: "0 0 " + width + " " + height, "class": "parallel", role: "img" });
    text(svg, width / 2, 20, "parallel coordinates (colour: " + metric + ")", "middle", "title");
    var gap = axes.length > 1 ? (width - left - right) / (axes.length - 1) : 0;
    var x = function (i) { return left + i * gap; };
    var y = function (t) { return top + (1 - t) * (height - top - bottom); };
    var colourScale = axes[axes.length - 1];
    points.forEach(function (p) {
      var coordinates = axes.map(function (a, i) {
        var v = i < fields.length ? param(p, fields[i].name) : p.value;
        return x(i).toFixed(1) + "," + y(a.position(v)).toFixed(1);
      });
      var line = node("polyline", {
        points: coordinates.join(" "), fill: "none", "stroke-width": 2, "stroke-opacity": 0.75,
        stroke: colour(colourScale.position(p.value)), "class": "line"
      }, svg);
      var title = node("title", {}, line);
      title.textContent = "run " + p.run + " · " + p.param_set + ": " + metric + " = " + p.value;
    });
    axes.forEach(function (a, i) {
      node("line", { x1: x(i), x2: x(i), y1: y(0), y2: y(1), stroke: "#444", "stroke-width": 1.2 }, svg);
      text(svg, x(i), top - 12, a.name, "middle", "axis-name");
      a.ticks.forEach(function (tick) {
        node("line", { x1: x(i) - 4, x2: x(i), y1: y(tick[0]), y2: y(tick[0]), stroke: "#444" }, svg);
        text(svg, x(i) - 7, y(tick[0]) + 4, tick[1], "end", "tick");
      });
    });
    container.textContent = "";
    container.appendChild(svg);
    container.setAttribute("data-drawn", String(points.length));
  }

  function sweepPlots(scatter) {
    getJson(scatter.getAttribute("data-src")).then(function (data) {
      var points = data.points || [];
      var metric = data.metric;
      var xField = data.fields.filter(function (f) { return f.name === data.x; })[0];
      var groups = {};
      points.forEach(function (p) {
        var key = data.color ? JSON.stringify(param(p, data.color)) : "all";
        (groups[key] = groups[key] || []).push(p);
      });
      var traces = Object.keys(groups).map(function (key) {
        var group = groups[key];
        return {
          type: "scatter",
          mode: "markers",
          name: data.color ? esc(data.color + " = " + label(JSON.parse(key))) : esc(metric),
          x: group.map(function (p) { return axisValue(data.x ? param(p, data.x) : p.param_set); }),
          y: group.map(function (p) { return p.value; }),
          text: group.map(function (p) { return esc("run " + p.run + " · " + p.param_set); }),
          marker: { size: 11, opacity: 0.8 }
        };
      });
      Plotly.newPlot(scatter, traces, {
        title: { text: esc(metric + (data.x ? " against " + data.x : "")) },
        xaxis: { title: { text: esc(data.x || "parameter set") }, type: xField && xField.numeric ? "linear" : "category" },
        yaxis: { title: { text: esc(metric) } },
        margin: { t: 50, r: 20 }
      }, CONFIG);
      scatter.setAttribute("data-drawn", String(points.length));

      var parallel = document.getElementById("sweep-parallel");
      if (parallel && data.fields.length) { parallelCoordinates(parallel, data.fields, points, metric); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var compare = document.getElementById("compare-plots");
    if (compare) { comparePlots(compare); }
    var scatter = document.getElementById("sweep-scatter");
    if (scatter) { sweepPlots(scatter); }
  });
})();

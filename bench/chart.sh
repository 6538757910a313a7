#!/usr/bin/env bash
# Draws the side-by-side chart of docs/performance.md from what
# `bench/run.sh ... peers` printed: one panel per workload (W1 one per request,
# W1 batched, W2 drain, W3 p99), one bar per system at its durable setting,
# medians as printed. Plain awk writing SVG, so it needs nothing installed.
#
#   bench/run.sh all peers 3 | tee results.txt
#   bench/chart.sh results.txt > docs/performance.svg
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: bench/chart.sh RESULTS_FILE > chart.svg" >&2; exit 2; }
awk -F'|' '
function trim(s) { gsub(/^ +| +$/, "", s); return s }
function num(s) { s = trim(s); sub(/ .*/, "", s); return s + 0 }
function commas(n,   s) { s = sprintf("%d", n); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s); return s }
/^Dray [0-9a-f]+/ && cond == "" { cond = $0; next }
# system name and workload from the row label
{
  label = trim($2)
  if (label == "" || label ~ /^-/) next
  sys = ""
  if (label ~ /^Dray W/) sys = "Dray"
  else if (label ~ /\(durable\)/) { sys = label; sub(/ \(durable\).*/, "", sys) }
  if (sys == "") next
  w = ""
  if (label ~ /W1 enqueue, 1 task\/request/) w = 1
  else if (label ~ /W1 enqueue, (batches|bulk) of 1000/) w = 2
  else if (label ~ /W2 drain/) w = 3
  else if (label ~ /W3 .*submit-to-start p99$/) w = 4
  if (w == "") next
  if (!(sys in seen)) { seen[sys] = 1; order[++nsys] = sys }
  val[w, sys] = num($3)
}
END {
  title[1] = "W1 enqueue, one task per request (tasks/s, higher is better)"
  title[2] = "W1 enqueue, batches of 1,000 (tasks/s, higher is better)"
  title[3] = "W2 drain of 100k queued, no-op handler (tasks/s, higher is better)"
  title[4] = "W3 submit-to-start p99 at 1,000/s (ms, log scale, lower is better)"
  color["Dray"] = "#1f6feb"
  left = 150; width = 560; bar = 18; gap = 6
  panel = 40 + nsys * (bar + gap)
  height = 60 + 4 * panel
  printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", left + width + 90, height
  printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
  gsub(/&/, "\\&amp;", cond)
  printf "<text x=\"10\" y=\"20\" font-size=\"11\" fill=\"#555\">%s durable settings (every acknowledged write synced)</text>\n", substr(cond, 1, 120)
  for (w = 1; w <= 4; w++) {
    y0 = 50 + (w - 1) * panel
    printf "<text x=\"10\" y=\"%d\" font-weight=\"bold\">%s</text>\n", y0, title[w]
    max = 0
    for (i = 1; i <= nsys; i++) { v = val[w, order[i]]; if (v > max) max = v }
    lo = 0.1  # latency axis starts at 0.1 ms
    for (i = 1; i <= nsys; i++) {
      s = order[i]; y = y0 + 10 + (i - 1) * (bar + gap)
      printf "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", left - 8, y + bar - 5, s
      if (!((w, s) in val) || val[w, s] <= 0) {
        printf "<text x=\"%d\" y=\"%d\" fill=\"#999\">no figure</text>\n", left + 4, y + bar - 5
        continue
      }
      v = val[w, s]
      if (w == 4) len = (log(v / lo) / log(max / lo)) * width
      else len = v / max * width
      if (len < 2) len = 2
      fill = (s in color) ? color[s] : "#9aa4b2"
      printf "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n", left, y, len, bar, fill
      label = (w == 4) ? sprintf("%g ms", v) : commas(v) "/s"
      printf "<text x=\"%.1f\" y=\"%d\">%s</text>\n", left + len + 4, y + bar - 5, label
    }
  }
  printf "</svg>\n"
}' "$1"

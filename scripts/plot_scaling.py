#!/usr/bin/env python3
"""Draws docs/video-scaling.svg: validation loss and motion accuracy of `genvis train video` runs
against their training compute (issue 17's scaling study). Standard library only.

  scripts/plot_scaling.py OUT.svg NAME:RUN_DIR:GFLOP_PER_STEP:EVAL_JSON [...]

RUN_DIR/dit/validation.jsonl gives (step, loss) points; EVAL_JSON is a `genvis eval` result.json
of the finished model (its shapes_video_motion_accuracy is drawn at the run's last step).
GFLOP_PER_STEP is the training step's arithmetic (bench_video's step_gflop, averaged over the
recipe's buckets by their weights).
"""
import json
import math
import sys

W, H = 760, 320
PANEL = [(60, 20, 330, 250), (440, 20, 330, 250)]  # x, y, width, height
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]


def read_runs(args):
    runs = []
    for a in args:
        name, run_dir, gflop, eval_json = a.rsplit(":", 3)
        points = []
        with open(f"{run_dir}/dit/validation.jsonl") as f:
            for line in f:
                if line.strip():
                    j = json.loads(line)
                    points.append((j["step"] * float(gflop) * 1e9, j["loss"]))
        with open(eval_json) as f:
            motion = json.load(f)["metrics"]["shapes_video_motion_accuracy"]
        runs.append({"name": name, "points": points, "motion": (points[-1][0], motion)})
    return runs


def axis(out, panel, xs, ys, xlabel, ylabel, ylog):
    x0, y0, w, h = panel
    lx = (math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs))))
    ly = (min(ys), max(ys))
    if ylog:
        ly = (math.log10(ly[0]) - 0.05, math.log10(ly[1]) + 0.05)
    else:
        ly = (0.0, max(1.0, ly[1]))

    def px(x):
        return x0 + (math.log10(x) - lx[0]) / (lx[1] - lx[0]) * w

    def py(y):
        v = math.log10(y) if ylog else y
        return y0 + h - (v - ly[0]) / (ly[1] - ly[0]) * h

    out.append(f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#444"/>')
    for e in range(lx[0], lx[1] + 1):
        x = px(10.0**e)
        out.append(f'<line x1="{x:.1f}" y1="{y0 + h}" x2="{x:.1f}" y2="{y0 + h + 4}" stroke="#444"/>')
        out.append(f'<text x="{x:.1f}" y="{y0 + h + 16}" font-size="11" text-anchor="middle">1e{e}</text>')
    ticks = [ly[0] + (ly[1] - ly[0]) * i / 4 for i in range(5)]
    for t in ticks:
        v = 10.0**t if ylog else t
        y = py(v)
        out.append(f'<line x1="{x0 - 4}" y1="{y:.1f}" x2="{x0}" y2="{y:.1f}" stroke="#444"/>')
        out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{v:.3g}</text>')
    out.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 34}" font-size="12" text-anchor="middle">{xlabel}</text>')
    out.append(f'<text x="{x0 - 46}" y="{y0 + h / 2}" font-size="12" text-anchor="middle" '
               f'transform="rotate(-90 {x0 - 46} {y0 + h / 2})">{ylabel}</text>')
    return px, py


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    runs = read_runs(sys.argv[2:])
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    xs = [p[0] for r in runs for p in r["points"]]
    px, py = axis(out, PANEL[0], xs, [p[1] for r in runs for p in r["points"]],
                  "training FLOPs", "validation loss (flow matching)", True)
    for i, r in enumerate(runs):
        c = COLOURS[i % len(COLOURS)]
        pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in r["points"])
        out.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="2"/>')
        for x, y in r["points"]:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{c}"/>')
        out.append(f'<text x="{PANEL[0][0] + 8}" y="{PANEL[0][1] + 16 + 14 * i}" font-size="12" fill="{c}">{r["name"]}</text>')
    qx, qy = axis(out, PANEL[1], [r["motion"][0] for r in runs] + xs, [r["motion"][1] for r in runs],
                  "training FLOPs", "motion accuracy (held-in)", False)
    for i, r in enumerate(runs):
        c = COLOURS[i % len(COLOURS)]
        x, y = r["motion"]
        out.append(f'<circle cx="{qx(x):.1f}" cy="{qy(y):.1f}" r="5" fill="{c}"/>')
        out.append(f'<text x="{qx(x) + 8:.1f}" y="{qy(y) + 4:.1f}" font-size="12" fill="{c}">{r["name"]}</text>')
    out.append("</svg>")
    with open(sys.argv[1], "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()

"""``report.html`` of a video batch: one card per video with its thumbnail, a per-frame quality plot per track
(inline SVG), and the numbers that matter (frames, tracks, accepted fits, warm vs cold steps, frames/s), plus the
failures of the latest run. Self-contained (no scripts, no external files besides the thumbnails next to it).

Built from every ``summary.json`` below the output folder, so videos finished by earlier runs are included.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any, Sequence

from hmr_fit.io.atomic import write_text

__all__ = ["write_report", "quality_svg"]

_COLORS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324")


def quality_svg(series: dict[str, list], frames: int, max_quality: float = 0.08, width: int = 320,
                height: int = 90) -> str:
    """Per-frame quality (keypoint error / person size) per track as an inline SVG line plot.

    Args:
        series: track id -> [[frame, quality or None], ...]; None (rejected fit) breaks the line.
        frames: frames in the video (x axis length).
        max_quality: the acceptance threshold, drawn as a dashed line.
    """
    top = max([max_quality * 1.5] + [q for s in series.values() for _, q in s if q is not None])
    pad = 4

    def xy(f: float, q: float) -> str:
        x = pad + (width - 2 * pad) * (f / max(frames - 1, 1))
        y = height - pad - (height - 2 * pad) * (q / top)
        return f"{x:.1f},{y:.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="fit quality per frame">',
             f'<rect width="{width}" height="{height}" fill="#fafafa" stroke="#ddd"/>',
             f'<line x1="{pad}" x2="{width - pad}" y1="{xy(0, max_quality).split(",")[1]}" '
             f'y2="{xy(0, max_quality).split(",")[1]}" stroke="#999" stroke-dasharray="4 3"/>']
    for k, (tid, points) in enumerate(sorted(series.items(), key=lambda kv: int(kv[0]))):
        color = _COLORS[int(tid) % len(_COLORS)]
        runs, run = [], []
        for f, q in points:
            if q is None:
                if run:
                    runs.append(run)
                run = []
            else:
                run.append(xy(f, q))
        if run:
            runs.append(run)
        for r in runs:
            if len(r) == 1:
                x, y = r[0].split(",")
                parts.append(f'<circle cx="{x}" cy="{y}" r="2" fill="{color}"/>')
            else:
                parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{" ".join(r)}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "–" if v is None else format(v, spec)


def write_report(output: str | os.PathLike, failures: Sequence[dict] = (), title: str = "hmr-fit video batch",
                 max_quality: float = 0.08) -> Path:
    """Write ``output/report.html`` from every ``summary.json`` below ``output``; returns its path.

    Args:
        output: the batch's output folder.
        failures: this run's failed videos, dicts with ``video`` and ``error``.
        max_quality: the fitter's acceptance threshold (drawn in the plots).
    """
    output = Path(output)
    cards = []
    summaries = sorted(output.rglob("summary.json"))
    for path in summaries:
        try:
            s = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        folder = path.parent.relative_to(output).as_posix()
        thumb = f'<img src="{html.escape(folder)}/{html.escape(s["thumbnail"])}" alt="overlay">' \
            if s.get("thumbnail") else '<div class="nothumb">no overlay</div>'
        tracks = s.get("tracks", {})
        accepted = sum(t.get("accepted", 0) for t in tracks.values())
        fitted = sum(t.get("frames", 0) for t in tracks.values())
        q = [t["quality_median"] for t in tracks.values() if t.get("quality_median") is not None]
        st = s.get("steps", {})
        fps = s.get("frames_per_second", {})
        total_s = sum(v for v in s.get("seconds", {}).values() if v)
        legend = " ".join(f'<span style="color:{_COLORS[int(t) % len(_COLORS)]}">&#9632; track {t}</span>'
                          for t in sorted(tracks, key=int))
        warn = "".join(f"<li>{html.escape(w)}</li>" for w in s.get("warnings", []))
        cards.append(f"""<div class="card"><h2>{html.escape(Path(s.get('video', folder)).name)}</h2>{thumb}
{quality_svg(s.get('quality', {}), int(s.get('frames', 1)), max_quality)}<div class="legend">{legend}</div>
<table><tr><td>frames</td><td>{s.get('frames')} ({s.get('width')}x{s.get('height')}, {_fmt(s.get('fps'), '.1f')} fps)</td></tr>
<tr><td>tracks</td><td>{len(tracks)}</td></tr>
<tr><td>fits accepted</td><td>{accepted} / {fitted}</td></tr>
<tr><td>median quality</td><td>{_fmt(min(q) if q else None)} – {_fmt(max(q) if q else None)}</td></tr>
<tr><td>steps warm / cold</td><td>{_fmt(st.get('warm_steps_mean'), '.1f')} / {_fmt(st.get('cold_steps_mean'), '.1f')}
 (evals {_fmt(st.get('warm_evaluations_mean'), '.1f')} / {_fmt(st.get('cold_evaluations_mean'), '.1f')})</td></tr>
<tr><td>frames/s</td><td>{_fmt(s.get('frames', 0) / total_s if total_s else None, '.2f')} (fit {_fmt(fps.get('fit'), '.1f')},
 detect {_fmt(fps.get('detect'), '.1f')}, render {_fmt(fps.get('render'), '.1f')})</td></tr>
<tr><td>output</td><td><a href="{html.escape(folder)}/">{html.escape(folder)}/</a></td></tr></table>
{f'<ul class="warn">{warn}</ul>' if warn else ''}</div>""")
    fails = "".join(f"<li><b>{html.escape(str(f.get('video')))}</b>: {html.escape(str(f.get('error')))}</li>"
                    for f in failures)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:1em;background:#fff;color:#222}}
.grid{{display:flex;flex-wrap:wrap;gap:1em}}.card{{border:1px solid #ddd;border-radius:6px;padding:.6em;width:340px}}
.card h2{{font-size:1em;margin:.2em 0 .4em;word-break:break-all}}.card img{{width:320px;display:block}}
.nothumb{{width:320px;height:60px;background:#eee;color:#888;text-align:center;line-height:60px}}
table{{font-size:.85em;border-collapse:collapse}}td{{padding:1px 6px 1px 0;vertical-align:top}}
.legend{{font-size:.8em}}.warn{{font-size:.8em;color:#a60}}.fail{{color:#b00}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{len(cards)} video(s) finished, {len(failures)} failed in the latest run. Plots: keypoint error / person size per
frame and track (lower is better; dashed: acceptance threshold {max_quality:g}; gaps: rejected or missing).</p>
{f'<h2 class="fail">Failed</h2><ul class="fail">{fails}</ul>' if fails else ''}
<div class="grid">{''.join(cards)}</div></body></html>
"""
    return write_text(output / "report.html", page)

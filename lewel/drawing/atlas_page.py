"""The atlas's static page: ``atlas_html(atlas)`` renders an atlas (``lewel.maps.atlas.build_atlas``'s record, as
``atlas.json`` holds it) as ``index.html``: a table of every map index, then one section per index with its top
thumbnails under each criterion; with the profile's measured patterns, each index's pattern and category bar."""

from __future__ import annotations

import html
import json
from functools import partial
from typing import Any

from ..formatting import format_number
from ..maps.pattern_names import role_text as _role_text
from ..maps.statistics import PATTERNS

#: the titles of ``lewel.maps.atlas.CRITERIA`` (the scores the top lists are ranked by), in that order
CRITERIA_TITLES = {"peak_ratio": "peak ÷ uniform", "stretched_mass": "range-stretched top-10 % mass"}


#: a number on the page: a dash for a missing value
_number = partial(format_number, missing="–")


def _category_bar(record: dict[str, Any]) -> str:
    """A map index's top categories as a short bar chart: one bar per category, its length the held-out
    AUROC above 0.5 (the preferred category in bold when its preference is significant)."""
    preferred = record.get("category") or {}
    bars = []
    for c in record.get("top_categories") or []:
        auroc = c.get("auroc_heldout")
        width = 0 if auroc is None else max(0.0, min(1.0, (auroc - 0.5) * 2)) * 60
        name = html.escape(c["name"])
        if preferred.get("significant") and preferred.get("name") == c["name"]:
            name = f"<b>{name}</b>"
        bars.append(
            f"<span class=\"cat\" title=\"held-out AUROC {_number(auroc)}\"><i style=\"width:{width:.0f}px\"></i>"
            f"{name} {_number(auroc, 2)}</span>"
        )
    return "".join(bars) or "–"


def atlas_html(atlas: dict[str, Any]) -> str:
    """The static page: a table of every map index, then one section per index with its two top lists; with
    the profile's measured patterns, each index's pattern and category bar."""
    model, e = atlas["model"], html.escape
    masks = atlas["has_masks"]
    measured = atlas.get("measured_patterns") is not None
    head = (
        f"<h1>Map atlas: {e(atlas['checkpoint']['file'])}</h1>"
        f"<p>{e(model['method'])} {e(model['backbone'])}, d = {model['d']} maps of {atlas['grid'][0]}×{atlas['grid'][1]} "
        f"at {atlas['size']} px; {atlas['images']} images ({atlas['skipped']} skipped), {atlas['views_per_image']} "
        f"view(s) each; data: {e(json.dumps(atlas['data'].get('root') or atlas['data'].get('spec')))}. "
        f"Top {atlas['top']} (image, view) per map by {CRITERIA_TITLES['peak_ratio']} and by "
        f"{CRITERIA_TITLES['stretched_mass']}; maps overlaid stretched to their own range, peak cell outlined."
        + (f" Mean AUROC over indices {_number(atlas['mean_auroc'])} (0.5 = no relation)." if masks else "")
        + "</p>"
        + (f"<p>Measured patterns (the model's profile): {e(atlas['measured_patterns'])}.</p>" if measured else "")
    )
    if atlas.get("thumbnails_note"):
        head += f"<p><em>{e(atlas['thumbnails_note'])}</em></p>"
    columns = "<tr><th>map</th><th>group</th><th>aligned</th><th>peak ÷ uniform</th><th>norm. entropy</th>" + (
        "<th>AUROC</th><th>pointing</th>" if masks else ""
    ) + "".join(f"<th>{e(p)}</th>" for p in PATTERNS) + (
        "<th>measured pattern</th><th>looks at (held-out AUROC)</th>" if measured else ""
    ) + "</tr>"
    rows = []
    for r in atlas["maps"]:
        s = r["statistics"]
        rows.append(
            f"<tr><td><a href=\"#map-{r['index']}\">{r['index']}</a></td><td>{r['group']}</td><td>{r['aligned']}</td>"
            f"<td>{s['peak_ratio']:.4f}</td><td>{s['normalized_entropy']:.5f}</td>"
            + (f"<td>{_number(r['auroc'])}</td><td>{_number(r['pointing'])}</td>" if masks else "")
            + "".join(f"<td>{r['patterns'][p]:.0%}</td>" for p in PATTERNS)
            + (f"<td>{e(_role_text(r.get('pattern'), r.get('pattern_leaning'), r.get('pattern_confidence')))}</td><td class=\"bars\">{_category_bar(r)}</td>" if measured else "")
            + "</tr>"
        )
    sections = []
    for r in atlas["maps"]:
        lists = []
        for name in CRITERIA_TITLES:
            figures = "".join(
                f"<figure><img src=\"{e(t['thumbnail'])}\" alt=\"map {r['index']} on {e(t['id'])}\" loading=\"lazy\">"
                f"<figcaption>{t['rank'] + 1}. {e(t['id'])} v{t['view']}<br>{t['score']:.4f}</figcaption></figure>"
                for t in r["top"][name]
            )
            lists.append(f"<h3>by {e(CRITERIA_TITLES[name])}</h3><div class=\"row\">{figures}</div>")
        s = r["statistics"]
        summary = (
            f"group {r['group']}, aligned representation {r['aligned']}; mean peak ÷ uniform {s['peak_ratio']:.4f}, "
            f"normalised entropy {s['normalized_entropy']:.5f}, active area {s['active_area']:.2f}; patterns "
            + ", ".join(f"{p} {r['patterns'][p]:.0%}" for p in PATTERNS)
            + (f"; AUROC {_number(r['auroc'])} over {r['auroc_views']} views, pointing {_number(r['pointing'])} "
               f"(chance {_number(r['pointing_chance'])})" if masks else "")
            + (f"; measured pattern {e(_role_text(r.get('pattern'), r.get('pattern_leaning'), r.get('pattern_confidence')))}" if measured else "")
        )
        if measured:
            summary += f"</p><p class=\"bars\">looks at: {_category_bar(r)}"
        sections.append(f"<section id=\"map-{r['index']}\"><h2>Map {r['index']}</h2><p>{summary}</p>{''.join(lists)}</section>")
    style = (
        "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;font-size:.85em}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}.row{display:flex;flex-wrap:wrap;gap:6px}"
        "figure{margin:0;font-size:.7em;width:min-content}figcaption{overflow-wrap:anywhere}"
        "section{border-top:1px solid #999;margin-top:1em}.bars{text-align:left}"
        ".cat{display:inline-block;margin-right:8px}.cat i{display:inline-block;height:.7em;background:#4a7;margin-right:3px}"
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Map atlas: {e(atlas['checkpoint']['file'])}</title><style>{style}</style></head><body>"
        f"{head}<table>{columns}{''.join(rows)}</table>{''.join(sections)}</body></html>\n"
    )

"""`negmine sources`: the presets."""

from __future__ import annotations

import json

import click

USE = {True: "yes", False: "no", None: "cannot say (treated as no by --licence commercial)"}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sources(as_json: bool) -> None:
    """List the named pools (presets) usable with --source NAME."""
    from dataclasses import asdict

    from negmine.licences import parse_licence
    from negmine.sources.presets import DEFAULT_PRESET, PRESETS

    if as_json:
        click.echo(json.dumps([{**asdict(p), "default": p.name == DEFAULT_PRESET, "licence_id": parse_licence(p.licence).id,
                                "commercial": parse_licence(p.licence).commercial} for p in PRESETS.values()], indent=2))
        return
    for p in PRESETS.values():
        star = " (default)" if p.name == DEFAULT_PRESET else ""
        rows = f"{p.rows:,} rows" if p.rows else "rows: see the card"
        kind = f"{p.classes} classes, labels: {p.label_kind}" if p.labelled_by == "classes" else f"labelled by {p.labelled_by}"
        click.echo(f"{p.name}{star}\n  repo: {p.repo}  split: {p.split}\n  {rows}, {kind}, images: {p.image_size}\n"
                   f"  licence: {p.licence} ({parse_licence(p.licence).id}); commercial use: "
                   f"{USE[parse_licence(p.licence).commercial]}\n  {p.note}")

"""`negmine classes`: which source classes overlap the positives, and why."""

from __future__ import annotations

from pathlib import Path

import click

from negmine.errors import NegmineError
from negmine.cli.common import CONCEPT_HELP, classes_text, emit, handle_errors, parse_concepts


@click.command()
@click.option("--source", "-s", "sources", multiple=True, metavar="SPEC", help="As for `sample` (default preset).")
@click.option("--positives", "-p", type=click.Path(path_type=Path), help="Take positive concepts from its class folders.")
@click.option("--exclude", "-x", multiple=True, metavar="TERM|WNID", help="Positive concept (repeatable).")
@click.option("--concept", "concepts", multiple=True, metavar="NAME=WNID_OR_LEMMA", callback=parse_concepts,
              help=CONCEPT_HELP)
@click.option("--allow-unmapped/--exclude-unmapped", default=False,
              help="As for `sample`: count source classes WordNet cannot place as kept, or as excluded (default).")
@click.option("--max-contamination", type=float, default=None, metavar="RATE",
              help="As for `sample`: exclude ImageNet-1k classes whose images show a positive at more than "
                   "this rate. 1: off. Default 0.05.")
@click.option("--image-column")
@click.option("--label-column")
@click.option("--text-column", metavar="COL[,COL...]",
              help="As for `sample`: read these text columns of a parquet pool as the nouns they name.")
@click.option("--allow-unlabelled", is_flag=True,
              help="As for `sample`: report on a pool whose images carry no label instead of refusing it.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def classes(sources, positives, exclude, concepts, allow_unmapped, max_contamination, image_column, label_column,
            text_column, allow_unlabelled, as_json) -> None:
    """Show which source classes overlap the positives, and why (the path through WordNet).

    \b
    negmine classes --source timm/mini-imagenet --exclude dog
    """
    from negmine.filters.overlap import plan_classes
    from negmine.positives import scan_positives
    from dataclasses import replace

    from negmine.sources import SourceSpec, open_sources
    from negmine.filters.unlabelled import check_sources, expected_share, left_out_line, warning

    terms = list(scan_positives(positives).labels.values()) if positives else []
    terms += list(exclude)
    if not terms:
        raise NegmineError("name the positives: --positives DIR and/or --exclude TERM")
    specs = [SourceSpec.parse(s) for s in sources]
    specs = [replace(s, image_column=s.image_column or image_column, label_column=s.label_column or label_column,
                     text_column=s.text_column or text_column) for s in specs]
    extra = {} if max_contamination is None else {"max_contamination": max_contamination}
    opened = open_sources(specs)
    found, _ = check_sources(opened, [allow_unlabelled or s.unlabelled == "allow" for s in specs] or [False],
                             content_check=False)
    plan = plan_classes(opened, terms, allow_unmapped=allow_unmapped, named=concepts, **extra)
    report = plan.report()
    if any(found):
        estimate = expected_share(plan.concepts, plan.unmapped_terms)
        report["unlabelled"] = [u.as_dict() for u in found if u is not None]
        report["unlabelled_contamination"] = estimate
        report["warnings"] = [warning(u, estimate) if u.drawn else left_out_line(u) for u in found if u is not None]
    emit(report, as_json, classes_text(report))

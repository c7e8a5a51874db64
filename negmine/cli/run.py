"""`negmine run`: a recipe file as `sample` options."""

from __future__ import annotations

import textwrap
from pathlib import Path

import click

from negmine.cli.common import handle_errors
from negmine.cli.sample import sample


def recipe_keys() -> str:
    """The keys a recipe may set, as `negmine run --help` lists them: each `sample` option by its
    TOML spelling, with the kind of value it takes."""
    keys = []
    for p in sample.params:
        flag = next((o for o in getattr(p, "opts", []) if o.startswith("--")), None)
        if flag is None or p.name == "debug":
            continue
        kind = " (list)" if getattr(p, "multiple", False) else " (true/false)" if getattr(p, "is_flag", False) \
            or getattr(p, "secondary_opts", None) else ""
        keys.append(flag[2:] + kind.replace(" ", "\0"))
    # no line broken inside a key (click would break "max-download" at its hyphen): a \b block
    return "\b\n" + "\n".join(textwrap.wrap(", ".join(keys), 76, break_on_hyphens=False)).replace("\0", " ")


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                              "help_option_names": ["-h", "--help"]},
               epilog="Recipe keys: the `sample` options (`negmine sample --help` says what each does), "
                      "and requires (list), the extras the recipe needs (cv, clip, ray), checked before the "
                      "run. Relative paths in a recipe are relative to the recipe's folder.\n\n" + recipe_keys())
@click.argument("recipe", type=click.Path(path_type=Path))
@click.pass_context
@handle_errors
def run(ctx, recipe) -> None:
    """Run a recipe: a TOML file of `sample` options. Options given after it override the recipe.
    Paths in the recipe are relative to its folder.

    \b
    cp recipes/bears-other.toml ~/data/      # beside ~/data/bears
    negmine run ~/data/bears-other.toml --seed 3   # writes ~/data/bears-with-other
    """
    from negmine.recipes import check_extras, load_recipe, needed_extras, recipe_requires

    values = load_recipe(recipe, {p.name: p for p in sample.params})
    # before any work: the extras the recipe names, and those its options need even if it names none
    check_extras(recipe, list(dict.fromkeys(recipe_requires(recipe) + needed_extras(values))))
    with sample.make_context("negmine run", list(ctx.args), parent=ctx, default_map=values) as sub:
        # --ratio / --balanced / --count are one choice: one given here replaces the recipe's
        amount = ("ratio", "balanced", "count")
        given = [n for n in amount if sub.get_parameter_source(n) == click.core.ParameterSource.COMMANDLINE]
        if given:
            for n in amount:
                if n not in given and sub.get_parameter_source(n) == click.core.ParameterSource.DEFAULT_MAP:
                    sub.params[n] = False if n == "balanced" else None
        sample.invoke(sub)

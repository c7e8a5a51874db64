"""The documentation: every option of every command documented once, on its command's page, and the
mkdocs site (guide, commands, API reference from the docstrings) builds with warnings as errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from negmine.cli import cli

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ROOT / "docs" / "commands"

LONG = re.compile(r"(?<![\w-])--[a-z0-9][a-z0-9-]*")
SHORT = re.compile(r"(?<![\w-])-[A-Za-z](?![\w-])")


def options_table(page: Path) -> list[str]:
    """The first cells of the page's one table headed `| option | ...`, one per row."""
    tables, rows = [], None
    for line in page.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]] if line.startswith("|") else None
        if cells and cells[0] == "option" and rows is None:
            rows = []
        elif cells is not None and rows is not None:
            if not set(cells[0]) <= set("-: "):          # the |---| row under the header
                rows.append(cells[0])
        elif rows is not None:
            tables.append(rows)
            rows = None
    if rows is not None:
        tables.append(rows)
    assert len(tables) == 1, f"{page.name}: {len(tables)} options tables (want one, headed '| option |')"
    return tables[0]


def documented(page: Path) -> tuple[list[str], list[str]]:
    """Option names (long, short) named in the first column, in order, repeats kept."""
    rows = options_table(page)
    return ([n for r in rows for n in LONG.findall(r)], [n for r in rows for n in SHORT.findall(r)])


def cli_options(command: click.Command) -> tuple[set[str], set[str]]:
    names = [n for p in command.params if isinstance(p, click.Option) and not p.hidden
             for n in (*p.opts, *p.secondary_opts)]
    return {n for n in names if n.startswith("--")}, {n for n in names if not n.startswith("--")}


@pytest.mark.parametrize("name", ["cutout"])
def test_every_option_of_the_command_has_a_description_in_help(name):
    # `negmine cutout --help` printed `--seed INTEGER` and nothing else: a user cannot tell what it does
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    bare = [p.opts[0] for p in cli.commands[name].params
            if isinstance(p, click.Option) and not p.hidden and not (p.help or "").strip()]
    assert bare == [], f"negmine {name} --help: no description for {', '.join(bare)}"
    assert "Seed of every random choice" in " ".join(result.output.split())


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_each_command_page_documents_exactly_its_options_once(name):
    page = COMMANDS / f"{name}.md"
    assert page.is_file(), f"`negmine {name}` has no page docs/commands/{name}.md"
    long, short = documented(page)
    want_long, want_short = cli_options(cli.commands[name])
    repeated = sorted({n for n in long if long.count(n) > 1})
    assert not repeated, f"{page.name}: options in more than one row: {repeated}"
    assert set(long) == want_long, (f"{page.name}: undocumented {sorted(want_long - set(long))}, "
                                    f"not options of `negmine {name}`: {sorted(set(long) - want_long)}")
    assert set(short) == want_short, f"{page.name}: short options {sorted(set(short))}, the CLI has {sorted(want_short)}"


def test_the_table_check_sees_a_missing_and_a_repeated_option(tmp_path):
    page = tmp_path / "dedup.md"
    text = (COMMANDS / "dedup.md").read_text(encoding="utf-8")
    page.write_text(text.replace("| `--dihedral` |", "| `--hash-distance` |"), encoding="utf-8")
    long, _ = documented(page)
    assert "--dihedral" not in long and long.count("--hash-distance") == 2


def test_every_command_page_is_a_command():
    assert {p.stem for p in COMMANDS.glob("*.md")} == set(cli.commands)


def test_docs_build_strict(tmp_path):
    """`mkdocs build --strict`: a broken link or anchor, a page outside the nav, or a docstring or
    API name mkdocstrings cannot render fails (as it does in CI)."""
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
    api = (tmp_path / "site" / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("negmine.pipeline.SampleOptions", "negmine.sources.base.Source", "negmine.filters.taxonomy",
                 "negmine.outputs.writers.local"):
        assert f'id="{name}' in api, f"API reference lacks {name}"


def test_the_api_reference_covers_every_library_module():
    # a module moved or added is in the reference, not silently left out (the strict build only
    # catches names that no longer resolve); the click layer is documented on the command pages
    page = (ROOT / "docs" / "reference" / "api.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^::: (negmine[\w.]*)$", page, re.M))
    modules = set()
    for path in (ROOT / "negmine").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name != "negmine" and not name.startswith(("negmine.cli", "negmine.__main__")):   # the package: a version
            modules.add(name)
    assert modules - listed == set(), "modules missing from docs/reference/api.md"
    assert listed - modules == set(), "docs/reference/api.md names modules that do not exist"

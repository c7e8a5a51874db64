"""The command line, one module per command (each a thin layer over the library): parse, call the
library, turn library errors into one line and an exit code."""

from __future__ import annotations

import os

import click

# negmine's own matrix products are tiny (8x32 DCT factors): BLAS threads would only spin beside the
# worker processes, where the parallelism is. Set before numpy loads; a value the user set wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from negmine import __version__  # noqa: E402


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="negmine")
def cli() -> None:
    """Build the negative ("other") part of image-classification datasets.

    \b
    negmine sample --positives ./bears --ratio 1 --out ./bears-with-other
    """


def main() -> None:
    import signal

    def terminate(signum, frame):           # batch schedulers stop jobs with SIGTERM: as Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    cli(prog_name="negmine")


from negmine.cli.sample import sample  # noqa: E402
from negmine.cli.classes import classes  # noqa: E402
from negmine.cli.dedup import dedup  # noqa: E402
from negmine.cli.cutout import cutout  # noqa: E402
from negmine.cli.mine import mine  # noqa: E402
from negmine.cli.report import report  # noqa: E402
from negmine.cli.sources import sources  # noqa: E402
from negmine.cli.run import run  # noqa: E402
from negmine.cli.eval import eval_  # noqa: E402

cli.add_command(sample)
cli.add_command(classes)
cli.add_command(dedup)
cli.add_command(cutout)
cli.add_command(mine)
cli.add_command(report)
cli.add_command(sources)
cli.add_command(run)
cli.add_command(eval_)

__all__ = ["cli", "main"]

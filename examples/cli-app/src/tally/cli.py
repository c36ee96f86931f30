"""``tally [FILE]...``: lines, words and characters of each file ("-" is stdin), then a total."""

import click

HEADER = "lines words chars name"


@click.command()
@click.argument("files", nargs=-1, type=click.File("r"))
@click.option("--header/--no-header", default=True, help="print a header line first")
def main(files: tuple[click.utils.LazyFile, ...], header: bool) -> None:
    if header:
        click.echo(HEADER)
    totals = [0, 0, 0]
    for f in files or (click.get_text_stream("stdin"),):
        text = f.read()
        counts = [text.count("\n"), len(text.split()), len(text)]
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
        click.echo(" ".join(str(c) for c in counts) + f" {f.name}")
    if len(files) > 1:
        click.echo(" ".join(str(c) for c in totals) + " total")

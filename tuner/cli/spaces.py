"""`tune spaces`: list the built-in search spaces, or show one."""

from __future__ import annotations

import click

from tuner.cli.app import Application


@click.command("spaces")
@click.argument("name", required=False)
@click.pass_obj
def command(app: Application, name: str | None) -> None:
    """List the built-in spaces; with NAME (or a file path), show that space's file."""
    from rich.syntax import Syntax
    from rich.table import Table

    from tuner.space.files import builtin_spaces, load_space

    terminal = app.terminal
    if name:
        space = load_space(name)  # validates it too
        terminal.console.print(Syntax(open(space.source).read(), "yaml", theme="ansi_dark", background_color="default"))
        terminal.info(f"{len(space.searched())} searched, {len(space.fixed())} fixed, {len(space.start)} start points; input "
                      f"{'x'.join(map(str, space.input_shape))}; fingerprint {space.fingerprint()}")
        return
    table = Table(title="built-in spaces (tune spaces NAME shows one)", title_justify="left")
    for column in ("name", "input", "searched", "epochs"):  # a built-in space is named after its dataset
        table.add_column(column, no_wrap=True)  # an 80-column CI log squeezes the description only
    table.add_column("description", ratio=1)
    for space_name in sorted(builtin_spaces()):
        s = load_space(space_name)
        table.add_row(space_name, "x".join(map(str, s.input_shape)), str(len(s.searched())),
                      str(s.training.max_epochs), s.description)
    terminal.console.print(table)

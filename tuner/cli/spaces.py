"""`tune spaces`: list the built-in search spaces, or show one."""

from __future__ import annotations

import click

from tuner.wording import plural
from tuner.cli.app import Application


@click.command("spaces")
@click.argument("name", required=False)
@click.pass_obj
def command(app: Application, name: str | None) -> None:
    """List the built-in spaces; with NAME (or a file path), show that space's file.

    The file goes to stdout alone (`tune spaces folder > my.yaml` is a space file to edit);
    its summary goes to stderr."""
    from rich.syntax import Syntax

    from tuner.space.files import builtin_spaces, load_space
    from tuner.ui.tables import spaces_table

    terminal = app.terminal
    if name is not None:  # `tune spaces ""` is a name to refuse, not the list
        space = load_space(name)  # validates it too
        text = open(space.source).read()
        if terminal.interactive:
            terminal.console.print(Syntax(text, "yaml", theme="ansi_dark", background_color="default"))
        else:
            terminal.console.file.write(text)  # as it is: no wrapping at the log's width
        terminal.aside(f"{len(space.searched())} searched, {len(space.fixed())} fixed, {plural(len(space.start), 'start point')}; input "
                      f"{'x'.join(map(str, space.input_shape))}; fingerprint {space.fingerprint()}")
        return
    terminal.console.print(spaces_table({name: load_space(name) for name in builtin_spaces()}))

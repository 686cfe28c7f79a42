"""What `tune check` (and a search's checks) show: on a TTY a rich table that grows as each
check finishes, else one plain line per check (a CI log reads them as they come)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rich.live import Live
from rich.table import Table
from rich.text import Text

from tuner.check.findings import Finding, Status
from tuner.paths import atomic, make_folder
from tuner.ui.terminal import Terminal
from tuner.wording import plural

STYLE = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "bold red"}


def findings_table(findings: list[Finding], running: bool = False) -> Table:
    table = Table(title="checks" + (" (running)" if running else ""), title_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("evidence")
    for f in findings:
        table.add_row(f.check, Text(f.status.value, style=STYLE[f.status]), f.evidence)
    return table


def finding_line(f: Finding) -> str:
    return f"{f.status.value:4}  {f.check}: {f.evidence}"


def summary_line(findings: list[Finding], seconds: float) -> str:
    counts = {s: sum(f.status is s for f in findings) for s in Status}
    return (f"{plural(len(findings), 'check')}: {counts[Status.PASS]} pass, {counts[Status.WARN]} warn, "
            f"{counts[Status.FAIL]} fail ({seconds:.0f} s)")


class CheckView:
    """Told each finding as it comes (`found`); a live table on a TTY, lines elsewhere."""

    def __init__(self, terminal: Terminal):
        self.t = terminal
        self.findings: list[Finding] = []
        self.live: Live | None = None
        self.start = time.monotonic()

    def __enter__(self) -> "CheckView":
        if self.t.interactive:
            self.live = Live(findings_table([], running=True), console=self.t.console, refresh_per_second=4,
                             vertical_overflow="visible")  # the newest rows, even past the screen's height
            self.live.__enter__()
        return self

    def found(self, finding: Finding) -> None:
        self.findings.append(finding)
        if self.live is not None:
            self.live.update(findings_table(self.findings, running=True))
        else:
            self.t.info(finding_line(finding))

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.update(findings_table(self.findings))
            self.live.__exit__(*exc)
        if self.findings:
            self.t.info(summary_line(self.findings, time.monotonic() - self.start))


def preview_writer(folder: Path) -> Callable[[np.ndarray, list[str]], Path]:
    """Writes the augmentation picture as `folder/augmented.png` (check 7), named by its full path."""
    folder = folder.absolute()

    def write(images: np.ndarray, captions: list[str]) -> Path:
        from tuner.ui.report.figures import image_grid

        fig = image_grid(images, captions, "training images at the space's strongest augmentation")
        make_folder(folder)
        path = folder / "augmented.png"
        atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
        return path

    return write

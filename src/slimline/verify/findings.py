"""What a verification found: problems (each naming a file and, when known, its package),
counts of what was accounted for and how, and notes.

Contract: a :class:`Findings` is filled by the checks of one image; :meth:`Findings.account`
marks a path as explained (by a RECORD row, a Debian package's record, a rule), and the path
is counted once under the first explanation; every file of the image that no check accounts
for becomes a problem in :func:`slimline.verify.image.verify`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Findings", "Problem"]


@dataclass(frozen=True, slots=True)
class Problem:
    path: str  # the file's path in the image, without a leading "/"
    what: str  # what is wrong ("sha256 differs from its RECORD row: expected ..., got ...")
    package: str = ""  # the distribution or Debian package the file belongs to

    def __str__(self) -> str:
        owner = f" [{self.package}]" if self.package else ""
        return f"/{self.path}{owner}: {self.what}"


@dataclass
class Findings:
    problems: list[Problem] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)  # files, by how they were accounted for
    dists: Counter[str] = field(default_factory=Counter)  # distributions, by how the lock accounts for them
    notes: list[str] = field(default_factory=list)
    accounted: set[str] = field(default_factory=set)

    def problem(self, path: str, what: str, package: str = "") -> None:
        self.problems.append(Problem(path, what, package))
        self.accounted.add(path)

    def account(self, path: str, how: str) -> None:
        if path not in self.accounted:
            self.accounted.add(path)
            self.counts[how] += 1

"""update-alternatives calls read from postinst scripts, and the links they give a tree."""

from __future__ import annotations

from slimline.base.debian import alternatives, assemble, policy
from slimline.layers.filetree import Kind, TreeBuilder

BLAS = b"""#!/bin/sh
set -e
update-alternatives --install /usr/lib/x86_64-linux-gnu/libblas.so.3 \\
                    libblas.so.3-x86_64-linux-gnu \\
                    /usr/lib/x86_64-linux-gnu/blas/libblas.so.3 10
if [ "$1" = "configure" ]; then ldconfig; fi
"""
OPENBLAS = b"""#!/bin/sh
set -e
update-alternatives --install /usr/lib/x86_64-linux-gnu/libblas.so.3 libblas.so.3-x86_64-linux-gnu \\
    /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 100
"""
MAWK = b"""#!/bin/sh
set -e
if [ "$1" = configure ]; then
  update-alternatives --quiet --install /usr/bin/awk awk /usr/bin/mawk 5 \\
    --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz \\
    --slave /usr/bin/nawk nawk /usr/bin/mawk
fi
"""
VARIABLE = b"""#!/bin/sh
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
update-alternatives --install /usr/lib/$MA/liblapack.so.3 liblapack.so.3-$MA \
  /usr/lib/$MA/lapack/liblapack.so.3 10
update-alternatives --remove awk /bin/o; update-alternatives --install /usr/bin/pager pager /bin/more 50
"""


def test_literal_install_calls_are_read_with_their_slaves_and_others_are_skipped() -> None:
    (blas,) = alternatives.parse(BLAS, package="libblas3")
    assert (blas.name, blas.priority) == ("libblas.so.3-x86_64-linux-gnu", 10)
    assert blas.links == (
        ("usr/lib/x86_64-linux-gnu/libblas.so.3", "usr/lib/x86_64-linux-gnu/blas/libblas.so.3"),
    )
    (awk,) = alternatives.parse(MAWK, package="mawk")
    assert awk.links[0] == ("usr/bin/awk", "usr/bin/mawk") and len(awk.links) == 3
    # $MA is known only when the script runs; --remove is not an install; a later call on the
    # same line after ";" is read on its own
    found = alternatives.parse(VARIABLE, package="more")
    assert [(a.name, a.links) for a in found] == [("pager", (("usr/bin/pager", "bin/more"),))]


def test_the_highest_priority_the_tree_holds_wins_and_nothing_is_overwritten() -> None:
    found = [
        *alternatives.parse(BLAS, package="libblas3"),
        *alternatives.parse(OPENBLAS, package="libopenblas0-pthread"),
        *alternatives.parse(MAWK, package="mawk"),
    ]
    lib = "usr/lib/x86_64-linux-gnu"
    held = {f"{lib}/blas/libblas.so.3", f"{lib}/openblas-pthread/libblas.so.3", "usr/bin/mawk"}
    assert alternatives.choose(found, holds=held.__contains__) == {
        f"{lib}/libblas.so.3": f"{lib}/openblas-pthread/libblas.so.3",
        "usr/bin/awk": "usr/bin/mawk",
        "usr/bin/nawk": "usr/bin/mawk",  # the man page's slave is left out: the tree has no man pages
    }
    held.discard(f"{lib}/openblas-pthread/libblas.so.3")
    held.add("usr/bin/awk")  # already there (a package's own file): left alone
    assert alternatives.choose(found, holds=held.__contains__) == {
        f"{lib}/libblas.so.3": f"{lib}/blas/libblas.so.3",
        "usr/bin/nawk": "usr/bin/mawk",
    }


def test_the_links_are_made_relative_where_the_merged_usr_puts_them() -> None:
    b = TreeBuilder()
    b.data("usr/lib/x86_64-linux-gnu/blas/libblas.so.3", b"ELF")
    b.data("usr/bin/more", b"ELF")
    found = [
        *alternatives.parse(BLAS, package="libblas3"),
        *alternatives.parse(VARIABLE, package="more"),
    ]
    made = assemble.alternative_links(b, found, rewrite=policy.usrmerge)
    tree = b.freeze()
    assert sorted(made) == ["usr/bin/pager", "usr/lib/x86_64-linux-gnu/libblas.so.3"]
    link = tree.get("usr/lib/x86_64-linux-gnu/libblas.so.3")
    assert link is not None and link.kind is Kind.SYMLINK and link.target == "blas/libblas.so.3"
    pager = tree.get("usr/bin/pager")  # /bin/more is usr/bin/more in a merged-/usr tree
    assert pager is not None and pager.target == "more"

"""Distroless-style Python bases assembled in pure Python from signed Debian packages.

The public entry points live in :mod:`slimline.base.debian.base` (``DebianRef``, ``BaseSettings``,
``suite_for``, ``resolve``, ``build``).  Modules, in pipeline order: :mod:`.mirror` (where the
archive is), :mod:`.release` (signed InRelease), :mod:`.packages` (hash-checked indexes),
:mod:`.resolve` (dependency closure), :mod:`.archive` (I/O and caching of the above),
:mod:`.deb` (reading .deb files), :mod:`.policy` (what is installed where),
:mod:`.assemble` (maintainer-script effects by hand), :mod:`.alternatives` (the links
update-alternatives would make), :mod:`.contents` (which package ships a
library, from the archive's Contents index).
"""

"""Stage: an image checked against what it was built from (``slimline verify``).

Takes an image reference (any transport slimline reads), optionally the project and a public
key; returns the lines of what was accounted for, or raises
:class:`~slimline.errors.VerificationFailed` (exit status 6) naming each file that differs
and its package.

Modules, in order:

* ``findings``: problems and counts of one image's check
* ``scan``: the final file system read in one pass, every file hashed
* ``python``: the venv against its distributions' RECORDs and the skeleton slimline writes
* ``bytecode``: ``.pyc`` files against their sources (PEP 552 hash-based headers)
* ``debian``: the base against its packages' ``.sha256sums`` records and the files slimline writes
* ``wheels``: the image's RECORDs against the locked wheels' own, when the cache holds them
* ``lock``: distributions against the project's lock, app files against the project's files
* ``image``: the whole check of an image, platform by platform
"""

"""Stage: the plan's artifacts as verified wheels in the cache.

Takes a :class:`~slimline.plan.model.Plan`; returns a wheel file per distribution, each either
downloaded and checked against the lock's hash while streaming, or built by its PEP 517 backend.

Modules, in order:

* ``sources``: where packages come from: the default index, Poetry sources, credentials
* ``index``: the simple repository API (PEP 503 HTML, PEP 691 JSON)
* ``unpack``: source archives unpacked safely (no escapes, links checked, sizes capped)
* ``filenames``: file names from servers, locks and URLs checked against the wheel and archive grammar
* ``wheelcache``: wheels by content and built wheels by their inputs
* ``derive``: a poetry-core project's wheel derived from its last one when only modules changed
* ``buildenv``: build environments for PEP 517 backends, one per requirement set, reused
* ``backend_hints``: a failed build's hint by its cause; a backend's warnings picked out
* ``build_backend``: PEP 517 builds in those environments; whether the target can use a wheel
* ``gitcheckout``: a git dependency's locked commit checked out from its repository
* ``origins``: each origin's way to a wheel (index, directory, file, url, git), hashes checked
* ``sandbox``: a program run inside a builder's root file system (bubblewrap), for any architecture
* ``targetenv``: build requirements installed for the target, one environment for the builds it serves
* ``compiled``: whether a source tree (or an archive's entries) holds code to compile; pure wheels
* ``targetbuild``: PEP 517 builds for the image, inside the builder
* ``fetch``: every distribution of a plan to a verified wheel (downloads in parallel, then builds)
* ``wheelinfo``: a wheel's size and native needs, memoised by its hash
"""

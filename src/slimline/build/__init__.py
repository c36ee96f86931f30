"""Stage: the conductor, which calls the other stages in order.

Takes a :class:`~slimline.build.conductor.Request` and a :class:`~slimline.context.Context`;
returns a :class:`~slimline.build.result.Result` (the images made, layer by layer, and the
outputs written), which the command line shows as lines or JSON.

Modules, in order:

* ``conductor``: the recipe: memo, or a full build; then publish
* ``start``: the project's wheel started before the rest loads
* ``writable``: directories owned by the image's user, added to the project's layer
* ``jobs``: the project's layer job (shared with the memo) and how every job is keyed
* ``preflight``: the groups line, and the base that fits the lock, before any download
* ``dependencies``: the venv and dependency layer jobs; wheels fetched once, when needed
* ``background``: work begun early on a thread of the lowest priority
* ``stdlib``: the standard library's bytecode layer, begun as soon as the base is known
* ``dropped``: slim mode's lists of what it left out, kept for the SBOM as layers are made or found
* ``imageconfig``: entrypoint, env, user, labels and ports
* ``assemble``: layers to image: the tail the memo shares
* ``image``: a full build, one image per platform
* ``debug``: the debug variant: the image plus a busybox layer, and where it is written
* ``memo``: the last build's result below the project layer, to remake only that layer
* ``attach``: the documents finished for the images, written to ``--sbom-out``, as referrers
* ``result``: what a command made and wrote, as values (``--json`` is their document)
* ``dryrun``: ``--dry-run``: the plan (base, target, groups, artifacts, layers), nothing fetched or written
* ``sharing``: the build cache shared through a registry (``cache-repo``), adapted to the stages
"""

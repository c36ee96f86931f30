"""Stage: the conductor, which calls the other stages in order.

Takes a :class:`~slimline.build.conductor.Request` and a :class:`~slimline.context.Context`;
returns one line per output written.

Modules, in order:

* ``conductor``: the recipe: memo, or a full build; then publish
* ``start``: the project's wheel started before the rest loads
* ``jobs``: the project's layer job (shared with the memo) and how every job is keyed
* ``preflight``: the groups line, and the base that fits the lock, before any download
* ``dependencies``: the venv and dependency layer jobs; wheels fetched once, when needed
* ``imageconfig``: entrypoint, env, user, labels and ports
* ``assemble``: layers to image: the tail the memo shares
* ``image``: a full build, one image per platform
* ``memo``: the last build's result below the project layer, to remake only that layer
* ``sharing``: the build cache shared through a registry (``cache-repo``), adapted to the stages
"""

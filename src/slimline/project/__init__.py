"""Stage: the project as the user wrote it, parsed once at the edge into frozen values.

Takes a project directory (``pyproject.toml``, a lock file, the command line's overrides);
returns :class:`~slimline.project.pyproject.Project`, :class:`~slimline.project.lockfile.Lock`
and :class:`~slimline.project.settings.Settings`.  Errors name the file and the field.

Modules, in order:

* ``toml``: the one typed TOML reader (field paths in errors)
* ``constraints``: Poetry's constraint syntax to PEP 440/508, once
* ``ignore``: what in a project's directory is not its source (tree hash, app files)
* ``groups``: dependencies, dependency groups and extras of a pyproject
* ``pyproject``: ``pyproject.toml`` (PEP 621 and ``[tool.poetry]``)
* ``lockfile``: ``poetry.lock`` (lock versions 1.1 to 2.1) and its freshness; the ``Lock`` model
* ``uvlock``: ``uv.lock`` into the same ``Lock`` (typed reader), and its freshness
* ``pylock``: PEP 751 ``pylock.toml`` into the same ``Lock`` (``packaging.pylock``)
* ``locks``: which lock file a build reads (``--lock``, the ``lock`` setting, the one present)
* ``locksources``: every source the lock names is one the project configures
* ``settings``: ``[tool.slimline]`` with the command line on top
"""

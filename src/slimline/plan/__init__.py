"""Stage: which distribution and which file of it goes into the image. Pure: no I/O.

Takes the project, its lock and the base's target; returns a
:class:`~slimline.plan.model.Plan`: each selected distribution with its origin and artifact.

Modules, in order:

* ``model``: ``Plan``, ``Selected``, ``Origin`` (and the lock's ``Artifact``)
* ``wheels``: the best wheel for a target, by its tags
* ``formats``: the selection rules of pylock.toml and uv.lock
* ``select``: groups, extras and markers evaluated for the target
* ``fit``: which known Debian suite the lock has wheels for, before anything is downloaded
* ``grouping``: which distributions share a layer
"""

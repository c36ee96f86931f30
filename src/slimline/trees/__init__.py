"""Stage: file trees for the image's layers.

Takes verified wheels, the project's files and (for bytecode) the base image; returns
:class:`~slimline.layers.filetree.FileTree` values laid out as they will be in the image.

Modules, in order:

* ``venv``: the venv's layout in the image, and its skeleton
* ``members``: wheel members as sources checked against RECORD while they stream
* ``artifactrecord``: the record in each dist-info of the locked artifact it came from
* ``install``: wheels installed into the venv through pypa ``installer``
* ``appfiles``: a ``package-mode = false`` project's files
* ``slim``: slim mode: what a running app does not read, left out of a distribution's tree
* ``compileserver``: the base's interpreter started here as a compile server, and its protocol
* ``compiler``: the interpreter that compiles bytecode (the base's own, or this one)
* ``bytecode``: ``.pyc`` files for a tree and for the base's standard library
"""

"""Stage: see inside images (``slimline inspect``, ``slimline diff``); reading only.

Takes image references of any medium a base can come from (through
:mod:`slimline.oci.transports`); returns documents (the ``--json`` output), lines for a
terminal, and a self-contained HTML page with a size map.  Layers are streamed once each
through :func:`slimline.layers.read.final_files` (whiteouts applied there), never held whole.

Modules, in order:

* ``source``: a reference to its images, one per platform
* ``scan``: one pass over the layers: each layer's members, the final file system
* ``packages``: Python distributions and Debian packages, and which owns each file
* ``summary``: the ``inspect`` document (config, base, layers, packages, largest, wasted)
* ``compare``: the ``diff`` document (packages, layers, files, sizes)
* ``sizemap``: the size map's tree (layer -> package -> directory -> file)
* ``text``: the documents as terminal lines
* ``page``: the HTML page (its template ``page.html``)
* ``views``: the commands' work, from references to output
"""

"""Stage: file trees -> reproducible layer blobs (and back), found by key or made once.

Takes :class:`~slimline.layers.filetree.FileTree` values (from :mod:`slimline.trees` and
:mod:`slimline.base.debian`) and :class:`~slimline.layers.job.Job` values (a key, a way to
make a tree); returns :class:`~slimline.oci.image.Layer` values whose blobs are in the cache.

Modules, in order:

* ``filetree``: the immutable tree of entries with lazy sources, and its builder
* ``archives``: limits for archives from elsewhere (duplicates, metadata sizes, zip and gzip bombs)
* ``compress``: gzip (block-parallel), zstd or none, hashing while streaming
* ``write``: a tree -> one layer blob, reproducibly
* ``read``: a blob -> tar members; the final file system of a stack of layers (whiteouts applied)
* ``job``: a layer to produce
* ``shared``: the interface of a cache shared beyond this machine (``SharedLayers``)
* ``cache``: the layer cache: ``realise(jobs)`` finds (here, else shared) or makes each job's layer

The common verbs are re-exported here (``layers.write``, ``layers.walk``, ...).
"""

from slimline.layers.cache import Realised, from_record, lookup, realise, record, store, write_many
from slimline.layers.compress import BLOCK_SIZE, Compression
from slimline.layers.read import members, read_tree, walk
from slimline.layers.write import FORMAT_VERSION, write

__all__ = [
    "BLOCK_SIZE",
    "FORMAT_VERSION",
    "Compression",
    "Realised",
    "from_record",
    "lookup",
    "members",
    "read_tree",
    "realise",
    "record",
    "store",
    "walk",
    "write",
    "write_many",
]

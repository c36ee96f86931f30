"""Stage: the content-addressed store every other stage keeps its results in.

Takes bytes and small records; returns paths to verified blobs and records, by content or key.

Modules, in order:

* ``store``: blobs by sha256 and metadata records, written atomically; the cache lock
* ``keys``: cache keys (kind + parts + format version) and the names of the cache's areas
* ``retention``: what the cache holds and pruning it by last use (``slimline cache``)
"""

"""Stage (and medium): OCI images as immutable values, and every place they are read or written.

Takes :class:`~slimline.oci.image.Image` values (or references to read them from); returns
images, and for outputs the line to print (the digest to pull by).

Modules, in order:

* ``image``: ``Platform``, ``Descriptor``, ``Layer``, ``Config``, ``History``, ``Image``; canonical JSON
* ``parse``: images from a manifest and config of any medium, every descriptor checked before use
* ``reference``: transport references (``oci:``, ``docker-archive:``, ``docker://``, ...)
* ``whiteout``: layer entry names: paths inside the root, and whiteouts
* ``blobs``: copying blobs with their digests checked while streaming
* ``diffid``: a layer's bytes decompressed (one reader), its diff_id checked against its config
* ``swap``: atomic directory replacement beside the destination
* ``layout_gc``: what a rewritten layout keeps of the old one: the other entries, the blobs they reach
* ``archive_tar``: the docker-archive tar, written deterministically and atomically
* ``layout``, ``archive``, ``daemon``: one module per medium, the same verbs (``read``, ``write``)
* ``credentials``: registry credentials from the auth files and credential helpers Docker and podman use
* ``auth``: ``WWW-Authenticate`` challenges; basic auth and bearer tokens per registry
* ``registry_client``: a session with one repository: transport, authentication, errors
* ``registry_blobs``: blobs fetched into the cache verified; uploaded by HEAD, mount, PUT or chunks
* ``registry_manifests``: manifests and indexes fetched verified (media type decided), and put
* ``registry``: ``pull`` and ``push`` (``docker://``), each given a ``Context``
* ``cacherepo``: a build cache in a registry repository: records tagged ``<kind>-<key>``, read and written
* ``login``: ``slimline login`` and ``logout``: credentials checked, then stored
* ``validate_read``: an image's files by name (directory or tar); a layer read once, hashed and listed
* ``validate``: digests, sizes and diff_ids agree, for any medium
* ``referrers``: documents attached to an image as OCI 1.1 referrers (layout tag, registry API, fallback)
* ``transports``: the one table from a reference kind to its reader and writer
* ``publish``: every output written, checked up front
* ``attached``: manifests stored beside an image under a tag of their own (cosign's ``sha256-<hex>.sig``)
"""

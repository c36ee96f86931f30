"""Stage: signatures of images, as cosign makes and stores them.

Takes a PEM key and images (or an image reference to check); returns signature manifests
stored beside the images (``sha256-<hex>.sig``), DSSE envelopes for attestations, and checks.

Modules, in order:

* ``keys``: ECDSA P-256 and Ed25519 keys read from PEM (passphrase from the environment or a prompt)
* ``payloads``: cosign's simple-signing payload; DSSE envelopes (PAE, sign, open)
* ``cosign``: signature and attestation manifests, stored under cosign's tags and checked
"""

"""Stage: what an image is made of and how, as documents (SBOMs, provenance).

Takes what a full build knows (the plan, the lock, wheel infos, the base and its Debian
packages); returns documents that :mod:`slimline.build` attaches to the image as OCI referrers
(:mod:`slimline.oci.referrers`).  Documents are made once per set of facts, with placeholders
for what only the finished image knows, and finished by text substitution, so a rebuild from
the memo loads none of the document libraries.

Modules, in order:

* ``vcs``: the project's git revision, read from ``.git``
* ``facts``: the plain values the documents are made from, gathered from the build
* ``slots``: the placeholders (image digest, serial number, git revision) and how they are filled
* ``cyclonedx``: the CycloneDX 1.6 JSON SBOM (``cyclonedx-python-lib``)
* ``spdx``: the SPDX 2.3 JSON SBOM (``spdx-tools``)
* ``provenance``: the in-toto Statement v1 with a SLSA v1 provenance predicate
* ``documents``: made (templates cached by their facts) and finished (for one image digest)
"""

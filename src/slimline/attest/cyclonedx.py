"""The CycloneDX 1.6 JSON SBOM of an image, made with ``cyclonedx-python-lib``.

What it lists (``bom-ref`` in brackets): the image itself as ``metadata.component`` (``image``,
type container, version = its digest); the project (``project``: its version, ``pkg:pypi``
purl when it is installed as a distribution, the git revision as the property
``slimline:vcs:revision``); every Python distribution (``pypi:NAME``: version, purl, the locked
artifact's SHA-256, its index or URL as a ``distribution`` reference, the license from its
metadata, each PEP 770 SBOM it carries as a ``bom`` reference to the file in the image; with
slim mode, the files it left out: one ``slimline:slim:dropped`` property per path in the image,
sorted, and ``slimline:slim:dropped-count`` and ``slimline:slim:dropped-bytes``); every
Debian package of the base (``deb:NAME:ARCH``: ``pkg:deb/debian`` purl with arch and distro,
the verified ``.deb`` SHA-256, source package and suite as properties); the interpreter
(``python``); the base image (``base``, version = its digest).  Dependencies: the image on the
project, interpreter and base; the project on what it requires; each distribution on what the
lock says it requires; the base on its packages.  Components and dependencies are sorted by
the library, the time is the build epoch: the same facts give the same bytes.
"""

from __future__ import annotations

import datetime
import uuid

from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import DisjunctiveLicense, License, LicenseExpression
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from slimline import __version__
from slimline.attest import slots
from slimline.attest.facts import Distribution, Facts
from slimline.base.resolve import DebPackage

__all__ = ["MEDIA_TYPE", "SLIM_DROPPED", "template"]

MEDIA_TYPE = "application/vnd.cyclonedx+json"
SLIM_DROPPED = "slimline:slim:dropped"  # a file slim mode left out of a distribution (a path in the image)


def template(facts: Facts, *, revision: bool) -> str:
    """The SBOM with :mod:`slimline.attest.slots` placeholders (``revision``: the project has one)."""
    bom = Bom(serial_number=uuid.UUID(slots.SERIAL))
    bom.metadata.timestamp = datetime.datetime.fromtimestamp(facts.epoch, datetime.UTC)
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name="slimline", version=__version__)
    )
    image = Component(type=ComponentType.CONTAINER, name=facts.name, version=slots.DIGEST, bom_ref="image")
    image.properties.add(Property(name="slimline:platform", value=facts.platform))
    bom.metadata.component = image
    project = _project(facts, revision=revision)
    python = Component(
        type=ComponentType.APPLICATION,
        name="cpython",
        version=facts.python,
        bom_ref="python",
        purl=PackageURL("generic", None, "cpython", facts.python),
        properties=[Property(name="slimline:interpreter", value=facts.interpreter)],
    )
    base = Component(
        type=ComponentType.CONTAINER,
        name=facts.base,
        version=facts.base_digest,
        bom_ref="base",
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=facts.base_digest.removeprefix("sha256:"))],
    )
    dists = {d.name: _distribution(d) for d in facts.distributions}
    debs = [_deb(p) for p in facts.debian]
    for c in (project, python, base, *dists.values(), *debs):
        bom.components.add(c)
    bom.register_dependency(image, [project, python, base])
    bom.register_dependency(project, [dists[n] for n in facts.direct])
    for d in facts.distributions:
        bom.register_dependency(dists[d.name], [dists[n] for n in d.depends])
    bom.register_dependency(base, debs)
    return str(JsonV1Dot6(bom).output_as_string(indent=2)) + "\n"


def _project(facts: Facts, *, revision: bool) -> Component:
    version = facts.version or None
    purl = PackageURL("pypi", None, facts.name.lower().replace("_", "-"), version) if facts.package else None
    c = Component(
        type=ComponentType.APPLICATION, name=facts.name, version=version, bom_ref="project", purl=purl
    )
    if revision:
        c.properties.add(Property(name="slimline:vcs:revision", value=slots.REVISION))
    return c


def _distribution(d: Distribution) -> Component:
    refs = []
    if d.source and d.kind in ("index", "url", "git"):
        refs.append(ExternalReference(type=_reference_type(d.kind), url=XsUri(d.source)))
    refs += [ExternalReference(type=ExternalReferenceType.BOM, url=XsUri(f"file://{p}")) for p in d.sboms]
    c = Component(
        type=ComponentType.LIBRARY,
        name=d.name,
        version=d.version,
        bom_ref=f"pypi:{d.name}",
        purl=PackageURL("pypi", None, d.name, d.version),
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=d.sha256)] if d.sha256 else [],
        licenses=_licenses(d),
        external_references=refs,
    )
    if d.filename:
        c.properties.add(Property(name="slimline:artifact", value=d.filename))
    if d.dropped:  # CycloneDX properties may repeat a name, each with its own value
        c.properties.update(Property(name=SLIM_DROPPED, value=p) for p in d.dropped)
        c.properties.add(Property(name=f"{SLIM_DROPPED}-count", value=str(len(d.dropped))))
        c.properties.add(Property(name=f"{SLIM_DROPPED}-bytes", value=str(d.dropped_size)))
    return c


def _reference_type(kind: str) -> ExternalReferenceType:
    return ExternalReferenceType.VCS if kind == "git" else ExternalReferenceType.DISTRIBUTION


def _licenses(d: Distribution) -> list[License]:
    if d.license:
        return [LicenseExpression(d.license)]
    return [DisjunctiveLicense(name=c.rsplit("::", 1)[-1].strip()) for c in d.classifiers]


def _deb(p: DebPackage) -> Component:
    distro = p.suite.split("-", 1)[0]
    return Component(
        type=ComponentType.LIBRARY,
        name=p.name,
        version=p.version,
        bom_ref=f"deb:{p.name}:{p.arch}",
        purl=PackageURL("deb", "debian", p.name, p.version, qualifiers={"arch": p.arch, "distro": distro}),
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=p.sha256)],
        properties=[
            Property(name="slimline:debian:source", value=p.source),
            Property(name="slimline:debian:suite", value=p.suite),
        ],
    )

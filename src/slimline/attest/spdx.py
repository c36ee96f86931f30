"""The SPDX 2.3 JSON SBOM of an image, made with ``spdx-tools`` (``sbom-format = ["spdx"]``).

The same content as :mod:`slimline.attest.cyclonedx`, as SPDX packages: the image
(``SPDXRef-image``, described by the document), the project, the interpreter, the base image,
each Python distribution (``SPDXRef-pypi-N``) and Debian package (``SPDXRef-deb-N``) with its
purl, SHA-256 and license (``licenseDeclared`` = the License-Expression when it parses as
SPDX, else NOASSERTION with the classifiers in ``licenseComments``; with slim mode, the files it
left out as annotations of type OTHER by the tool, one per path in the image, sorted, whose
comment is ``slimline:slim:dropped=<path>``, then ``slimline:slim:dropped-count=<n>`` and
``slimline:slim:dropped-bytes=<n>``: the CycloneDX SBOM's properties); relationships CONTAINS
(image -> project, interpreter, base; base -> its packages) and DEPENDS_ON (from the lock).
Packages are written in a fixed order; the namespace is derived from the image's digest and
the time is the build epoch: the same facts give the same bytes.
"""

from __future__ import annotations

import datetime
import io

from license_expression import ExpressionError, get_spdx_licensing  # type: ignore[import-untyped]
from packageurl import PackageURL
from spdx_tools.spdx.model.actor import Actor, ActorType
from spdx_tools.spdx.model.annotation import Annotation, AnnotationType
from spdx_tools.spdx.model.checksum import Checksum, ChecksumAlgorithm
from spdx_tools.spdx.model.document import CreationInfo, Document
from spdx_tools.spdx.model.package import (
    ExternalPackageRef,
    ExternalPackageRefCategory,
    Package,
    PackagePurpose,
)
from spdx_tools.spdx.model.relationship import Relationship, RelationshipType
from spdx_tools.spdx.model.spdx_no_assertion import SpdxNoAssertion
from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

from slimline import __version__
from slimline.attest import slots
from slimline.attest.facts import Distribution, Facts

__all__ = ["MEDIA_TYPE", "NAMESPACE", "SLIM_DROPPED", "template"]

MEDIA_TYPE = "application/spdx+json"
NAMESPACE = "https://spdx.org/spdxdocs/slimline/"  # + the image's digest hex
SLIM_DROPPED = "slimline:slim:dropped"  # a file slim mode left out of a distribution (a path in the image)


def template(facts: Facts, *, revision: bool) -> str:
    """The SBOM with :mod:`slimline.attest.slots` placeholders (``revision``: the project has one)."""
    info = CreationInfo(
        spdx_version="SPDX-2.3",
        spdx_id="SPDXRef-DOCUMENT",
        name=f"{facts.name} {facts.platform}",
        document_namespace=NAMESPACE + slots.DIGEST.removeprefix("sha256:"),
        creators=[Actor(ActorType.TOOL, f"slimline-{__version__}")],
        created=datetime.datetime.fromtimestamp(facts.epoch, datetime.UTC).replace(tzinfo=None),
    )
    image = _package("SPDXRef-image", facts.name, slots.DIGEST, PackagePurpose.CONTAINER)
    image.checksums = [Checksum(ChecksumAlgorithm.SHA256, slots.DIGEST.removeprefix("sha256:"))]
    project = _package("SPDXRef-project", facts.name, facts.version or None, PackagePurpose.APPLICATION)
    if facts.package:
        name = facts.name.lower().replace("_", "-")
        project.external_references = [_purl(PackageURL("pypi", None, name, facts.version))]
    if revision:
        project.source_info = f"git revision {slots.REVISION}"
    python = _package("SPDXRef-python", "cpython", facts.python, PackagePurpose.APPLICATION)
    python.comment = f"interpreter {facts.interpreter}"
    base = _package("SPDXRef-base", facts.base, facts.base_digest, PackagePurpose.CONTAINER)
    base.checksums = [Checksum(ChecksumAlgorithm.SHA256, facts.base_digest.removeprefix("sha256:"))]
    ids = {d.name: f"SPDXRef-pypi-{i}" for i, d in enumerate(facts.distributions)}
    dists = [_distribution(d, ids[d.name]) for d in facts.distributions]
    debs = []
    for i, p in enumerate(facts.debian):
        deb = _package(f"SPDXRef-deb-{i}", p.name, p.version, PackagePurpose.LIBRARY)
        deb.checksums = [Checksum(ChecksumAlgorithm.SHA256, p.sha256)]
        distro = p.suite.split("-", 1)[0]
        deb.external_references = [
            _purl(
                PackageURL("deb", "debian", p.name, p.version, qualifiers={"arch": p.arch, "distro": distro})
            )
        ]
        deb.source_info = f"source package {p.source}, suite {p.suite}"
        debs.append(deb)
    rel = [Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, "SPDXRef-image")]
    contains, depends = RelationshipType.CONTAINS, RelationshipType.DEPENDS_ON
    rel += [
        Relationship("SPDXRef-image", contains, x)
        for x in ("SPDXRef-project", "SPDXRef-python", "SPDXRef-base")
    ]
    rel += [Relationship("SPDXRef-image", contains, ids[d.name]) for d in facts.distributions]
    rel += [Relationship("SPDXRef-project", depends, ids[n]) for n in facts.direct]
    rel += [Relationship(ids[d.name], depends, ids[n]) for d in facts.distributions for n in d.depends]
    rel += [Relationship("SPDXRef-base", contains, p.spdx_id) for p in debs]
    notes = [n for d in facts.distributions for n in _dropped(d, ids[d.name], info)]
    packages = [image, project, python, base, *dists, *debs]
    doc = Document(info, packages=packages, relationships=rel, annotations=notes)
    out = io.StringIO()
    write_document_to_stream(doc, out, validate=False)  # validated in the tests (it costs seconds)
    return out.getvalue() + "\n"


def _package(spdx_id: str, name: str, version: str | None, purpose: PackagePurpose) -> Package:
    return Package(
        spdx_id=spdx_id,
        name=name,
        download_location=SpdxNoAssertion(),
        version=version,
        files_analyzed=False,
        primary_package_purpose=purpose,
    )


def _purl(purl: PackageURL) -> ExternalPackageRef:
    return ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", purl.to_string())


def _distribution(d: Distribution, spdx_id: str) -> Package:
    p = _package(spdx_id, d.name, d.version, PackagePurpose.LIBRARY)
    p.external_references = [_purl(PackageURL("pypi", None, d.name, d.version))]
    if d.sha256:
        p.checksums = [Checksum(ChecksumAlgorithm.SHA256, d.sha256)]
    if d.source and d.kind in ("index", "url", "git"):  # not downloadLocation: SPDX's rule refuses some URLs
        p.source_info = f"from the {d.kind} {d.source}"
    if d.filename:
        p.file_name = d.filename
    p.license_declared = SpdxNoAssertion()
    if d.license:
        try:
            p.license_declared = get_spdx_licensing().parse(d.license, validate=True)
        except ExpressionError:
            p.license_comment = f"License-Expression: {d.license}"
    elif d.classifiers:
        p.license_comment = "; ".join(d.classifiers)
    if d.sboms:
        p.comment = "PEP 770 SBOMs in the image: " + ", ".join(d.sboms)
    return p


def _dropped(d: Distribution, spdx_id: str, info: CreationInfo) -> list[Annotation]:
    """What slim mode left out of ``d``, as annotations of its package (see the module)."""
    if not d.dropped:
        return []
    said = [f"{SLIM_DROPPED}={p}" for p in d.dropped]
    said += [f"{SLIM_DROPPED}-count={len(d.dropped)}", f"{SLIM_DROPPED}-bytes={d.dropped_size}"]
    tool = info.creators[0]
    return [Annotation(spdx_id, AnnotationType.OTHER, tool, info.created, text) for text in said]

"""The provenance of an image: an in-toto Statement v1 with a SLSA v1 provenance predicate.

Layout (``predicate``): ``buildDefinition.buildType`` = :data:`BUILD_TYPE`;
``externalParameters``: the settings the image was built with (``[tool.slimline]`` and the
command line's image options, resolved) and the platform; ``internalParameters``: slimline's
version; ``resolvedDependencies``: the base (its reference and digest), ``poetry.lock``
(sha256), every Debian ``InRelease`` read for the base (its URL and sha256), each package index
(URL, credentials removed), and the project's git revision when it has one;
``runDetails.builder.id`` = the configured builder (``builder-id`` / ``SLIMLINE_BUILDER_ID``),
``runDetails.metadata.startedOn``/``finishedOn`` = the build epoch (``SOURCE_DATE_EPOCH``): a
rebuild of the same inputs gives the same bytes.  The subject is the image's manifest digest.
Serialised canonically (sorted keys, no spaces).
"""

from __future__ import annotations

from typing import Any

from slimline import __version__
from slimline.attest import slots
from slimline.attest.facts import Facts
from slimline.oci.image import canonical_json, rfc3339

__all__ = ["BUILD_TYPE", "MEDIA_TYPE", "PREDICATE_TYPE", "STATEMENT_TYPE", "template"]

MEDIA_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://slimline.invalid/buildtypes/poetry-image/v1"
DEFAULT_BUILDER = "urn:slimline:builder:local"


def template(facts: Facts, *, revision: bool) -> str:
    """The statement with :mod:`slimline.attest.slots` placeholders (``revision``: the project has one)."""
    deps: list[dict[str, Any]] = [
        {"name": "base", "uri": facts.base, "digest": {"sha256": facts.base_digest.removeprefix("sha256:")}},
        {"name": "poetry.lock", "digest": {"sha256": facts.lock_sha256}},
    ]
    deps += [
        {"name": "debian-inrelease", "uri": url, "digest": {"sha256": sha}} for url, sha in facts.releases
    ]
    deps += [{"name": "index", "uri": url} for url in facts.indexes]
    if revision:
        deps.append({"name": "source", "digest": {"gitCommit": slots.REVISION}})
    when = rfc3339(facts.epoch)
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": facts.name, "digest": {"sha256": slots.DIGEST.removeprefix("sha256:")}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {"platform": facts.platform, "settings": dict(facts.parameters)},
                "internalParameters": {"slimline": __version__},
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": facts.builder_id or DEFAULT_BUILDER},
                "metadata": {"startedOn": when, "finishedOn": when},
            },
        },
    }
    return canonical_json(statement).decode()

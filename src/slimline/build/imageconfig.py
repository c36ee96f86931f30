"""How the image runs: its OCI config (entrypoint, environment, user, labels, ports) made
from the base's config, the project's metadata and the settings."""

from __future__ import annotations

from dataclasses import replace

from slimline.base import resolve as bases
from slimline.base import users
from slimline.cache.store import Cache
from slimline.errors import without_credentials
from slimline.oci.image import Config
from slimline.project import pyproject as project_mod
from slimline.project.settings import Settings

__all__ = ["DEFAULT_PATH", "make"]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def make(proj: project_mod.Project, *, settings: Settings, base: bases.Base, cache: Cache) -> Config:
    """The image config of ``proj`` on ``base``: the base's config with the venv on ``PATH``,
    the settings' env, entrypoint (default: the project's only console script, else the
    venv's python), cmd, workdir, user (default: the base's non-root user), labels (the
    base's, then the project's metadata as ``org.opencontainers.image.*`` with URLs stripped
    of credentials, then the settings') and ports."""
    cfg = base.image.config
    venv_bin = f"{settings.venv}/bin"
    env = {
        "PATH": f"{venv_bin}:{cfg.env_map().get('PATH', DEFAULT_PATH)}",
        "VIRTUAL_ENV": settings.venv,
        "PYTHONUNBUFFERED": "1",
    }
    if not settings.bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(settings.env)
    cfg = cfg.with_env(**env)
    if settings.entrypoint is not None:
        entrypoint: tuple[str, ...] = tuple(settings.entrypoint)
    else:
        scripts = sorted(proj.scripts) if proj.package_mode else []
        entrypoint = (f"{venv_bin}/{scripts[0]}",) if len(scripts) == 1 else (f"{venv_bin}/python",)
    cmd = tuple(settings.cmd) if settings.cmd is not None else ()
    labels = {**cfg.labels, **_project_labels(proj), **settings.labels}
    ports = set(cfg.exposed_ports) | {str(p) if "/" in str(p) else f"{p}/tcp" for p in settings.ports}
    return replace(
        cfg,
        entrypoint=entrypoint,
        cmd=cmd,
        working_dir=settings.workdir,
        user=settings.user if settings.user is not None else users.default_user(base.image, cache=cache),
        labels=labels,
        exposed_ports=tuple(sorted(ports)),
    )


def _project_labels(proj: project_mod.Project) -> dict[str, str]:
    out = {"org.opencontainers.image.title": proj.name}
    if proj.version:
        out["org.opencontainers.image.version"] = proj.version
    if proj.description:
        out["org.opencontainers.image.description"] = proj.description
    if proj.license:
        out["org.opencontainers.image.licenses"] = proj.license
    if proj.authors:
        out["org.opencontainers.image.authors"] = ", ".join(proj.authors)
    source = proj.urls.get("repository") or proj.urls.get("source")
    if source:
        out["org.opencontainers.image.source"] = without_credentials(source)
    url = proj.urls.get("homepage")
    if url:
        out["org.opencontainers.image.url"] = without_credentials(url)
    docs = proj.urls.get("documentation")
    if docs:
        out["org.opencontainers.image.documentation"] = without_credentials(docs)
    return out

"""The environment inside the image that packages are chosen for: never the host.

A :class:`Target` is read from the base image's own files (or known from how a Debian base
was assembled): interpreter path and version, libc family and version, architecture.
It answers the two questions selection asks: the PEP 508 marker environment, and the
ordered list of wheel tags it accepts (best first).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from slimline.oci.image import Platform

if TYPE_CHECKING:
    from packaging.tags import Tag

__all__ = ["LABEL_INTERPRETER", "LABEL_LIBC", "LABEL_PYTHON", "Target", "machine_of"]

# Labels a slimline-built base carries so that detection needs no file scan.
LABEL_PYTHON = "dev.slimline.python.version"  # "3.11.2"
LABEL_INTERPRETER = "dev.slimline.python.interpreter"  # "/usr/bin/python3.11"
LABEL_LIBC = "dev.slimline.libc"  # "glibc-2.36" or "musl-1.2.5"

_MACHINES = {
    "amd64": "x86_64",
    "arm64": "aarch64",
    "arm": "armv7l",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "386": "i686",
}


def machine_of(platform: Platform) -> str:
    """OCI architecture -> ``platform_machine`` / wheel arch (``amd64`` -> ``x86_64``)."""
    try:
        return _MACHINES[platform.architecture]
    except KeyError:
        raise ValueError(f"unsupported architecture {platform.architecture!r}") from None


@dataclass(frozen=True, slots=True)
class Target:
    platform: Platform
    python_version: tuple[int, int, int]  # (3, 11, 2)
    interpreter: str  # absolute path inside the image, e.g. "/usr/bin/python3.11"
    libc: Literal["glibc", "musl"]
    libc_version: tuple[int, int]  # (2, 36)

    @property
    def machine(self) -> str:
        return machine_of(self.platform)

    @property
    def python_xy(self) -> str:
        return f"{self.python_version[0]}.{self.python_version[1]}"

    @property
    def abi(self) -> str:
        return f"cp{self.python_version[0]}{self.python_version[1]}"

    def marker_env(self) -> dict[str, str]:
        full = ".".join(str(p) for p in self.python_version)
        return {
            "implementation_name": "cpython",
            "implementation_version": full,
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": full,
            "python_version": self.python_xy,
            "sys_platform": "linux",
        }

    def platform_tags(self) -> list[str]:
        """manylinux/musllinux platform tags, best first (mirrors ``packaging._manylinux``)."""
        arch = self.machine
        out: list[str] = []
        major, minor = self.libc_version
        if self.libc == "glibc":
            floor = 5 if arch in ("x86_64", "i686") else 17
            aliases = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
            for m in range(minor, floor - 1, -1):
                out.append(f"manylinux_{major}_{m}_{arch}")
                if m in aliases:
                    out.append(f"{aliases[m]}_{arch}")
        else:
            out.extend(f"musllinux_{major}_{m}_{arch}" for m in range(minor, -1, -1))
        out.append(f"linux_{arch}")
        return out

    def tags(self) -> list[Tag]:
        """Every tag the target accepts, in priority order (index 0 is best)."""
        from packaging.tags import compatible_tags, cpython_tags  # loaded only when selecting wheels

        xy = (self.python_version[0], self.python_version[1])
        plats = self.platform_tags()
        return [
            *cpython_tags(xy, abis=[self.abi], platforms=plats),
            *compatible_tags(xy, self.abi, platforms=plats),
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": {"architecture": self.platform.architecture, "os": self.platform.os,
                         "variant": self.platform.variant},
            "python_version": list(self.python_version),
            "interpreter": self.interpreter,
            "libc": self.libc,
            "libc_version": list(self.libc_version),
        }  # fmt: skip

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Target:
        """The inverse of :meth:`to_json` (raises KeyError/TypeError/ValueError on other input)."""
        pv, lv = d["python_version"], d["libc_version"]
        libc = d["libc"]
        if libc not in ("glibc", "musl"):
            raise ValueError(f"unknown libc {libc!r}")
        return cls(
            platform=Platform(**d["platform"]),
            python_version=(int(pv[0]), int(pv[1]), int(pv[2])),
            interpreter=str(d["interpreter"]),
            libc=libc,
            libc_version=(int(lv[0]), int(lv[1])),
        )

    def labels(self) -> dict[str, str]:
        return {
            LABEL_PYTHON: ".".join(str(p) for p in self.python_version),
            LABEL_INTERPRETER: self.interpreter,
            LABEL_LIBC: f"{self.libc}-{self.libc_version[0]}.{self.libc_version[1]}",
        }

    def __str__(self) -> str:
        v = ".".join(str(p) for p in self.python_version)
        libc = f"{self.libc} {self.libc_version[0]}.{self.libc_version[1]}"
        return f"CPython {v} ({self.interpreter}) on {self.platform}, {libc}"

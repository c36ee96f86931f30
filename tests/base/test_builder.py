"""The builder's packages named for the libraries that wheels built in it link."""

from __future__ import annotations

from pathlib import Path

from slimline.base import builder


def test_providers_follow_the_soname_link_to_the_file_a_package_lists(tmp_path: Path) -> None:
    root = tmp_path / "root"
    lib = root / "usr/lib/x86_64-linux-gnu"
    lib.mkdir(parents=True)
    (lib / "libldap-2.5.so.0.1.11").write_bytes(b"elf")
    (lib / "libldap-2.5.so.0").symlink_to("libldap-2.5.so.0.1.11")
    (lib / "libldap.so").symlink_to("libldap-2.5.so.0")  # the -dev package's link
    records = root / "var/lib/dpkg/status.d"
    records.mkdir(parents=True)
    (records / "libldap-2.5-0.md5sums").write_text("0123  usr/lib/x86_64-linux-gnu/libldap-2.5.so.0.1.11\n")
    (records / "libldap-dev.md5sums").write_text("4567  usr/include/ldap.h\n")
    assert builder.providers(root, ["libldap-2.5.so.0", "libnothere.so.1"]) == {
        "libldap-2.5.so.0": "libldap-2.5-0"
    }


def test_a_builder_for_python_x_y_asks_for_its_headers_and_the_tools() -> None:
    wanted = builder.packages("3.13", ("libpq-dev",))
    assert wanted[:3] == ("python3.13", "python3.13-dev", "build-essential")
    assert "pkg-config" in wanted and "dash" in wanted and wanted[-1] == "libpq-dev"

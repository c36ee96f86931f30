"""``dbclients``: call into each compiled extension (no server needed) and print what it links."""

import ldap
import ldap.dn
import MySQLdb
import psycopg2
import psycopg2.extensions


def main() -> None:
    dn = ldap.dn.str2dn("cn=Ada Lovelace,dc=example,dc=org")
    quoted = psycopg2.extensions.QuotedString("it's").getquoted()
    escaped = MySQLdb._mysql.escape_string(b"it's")
    print(f"python-ldap {ldap.__version__}: {len(dn)} RDNs")
    print(f"psycopg2 {psycopg2.__version__.split()[0]} (libpq {psycopg2.__libpq_version__}): {quoted!r}")
    print(f"mysqlclient {MySQLdb.version_info[:3]} (client {MySQLdb.get_client_info()}): {escaped!r}")

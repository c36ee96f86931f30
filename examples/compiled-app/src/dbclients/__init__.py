"""dbclients: the client libraries of LDAP, PostgreSQL and MySQL/MariaDB, compiled for the image."""

"""slimline: Poetry project to OCI image, without a container engine."""

__version__ = "0.1.0"

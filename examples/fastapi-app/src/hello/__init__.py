"""slimline's example app."""

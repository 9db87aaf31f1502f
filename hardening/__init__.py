"""hardening: CI/CD hardening with evidence."""
__version__ = "0.1.0"

"""Checks of the GitHub Actions workflows, the Dockerfiles and their fit with the OIDC roles."""

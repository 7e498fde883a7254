"""Pipeline step scripts: a pure function and a thin main() per job; each file stands alone."""

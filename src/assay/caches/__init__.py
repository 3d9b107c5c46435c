"""Caches that keep their entries somewhere other than a local folder (see :mod:`assay.cache`)."""

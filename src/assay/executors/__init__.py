"""Built-in executors: where stage runs execute (see :mod:`assay.executor`)."""

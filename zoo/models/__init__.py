"""Model code of the package's own (below load: it may import errors and core). Needs torch."""

"""Benchmarks (never deployed: .funcignore keeps bench/ out of the package)."""

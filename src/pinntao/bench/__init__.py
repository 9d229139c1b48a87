"""Benchmark runner: ``python -m pinntao.bench --help``."""

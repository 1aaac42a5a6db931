"""Benchmarks P1 to P6 of the quality bars (docs/performance.md): ``python -m benchmarks``."""

"""The benchmarks: one module per question (see README.md here)."""

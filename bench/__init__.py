"""Side-by-side benchmarks (`make bench`): each bench_*.py module has run(server) and prints ratios."""

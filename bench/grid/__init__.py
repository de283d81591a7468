"""A run of the benchmark grid: its request, the cells of (model, seed), shards and claims, the
records, costs and their cache, size matching, and cross-dataset evaluation."""

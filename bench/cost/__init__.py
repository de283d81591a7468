"""The cost of a model: parameters, operation counts, timing and memory, estimates of a run's
duration, and the counts that size matching scales by."""

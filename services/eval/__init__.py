"""Quality metrics shared by the stages' evaluations and benchmarks."""

"""Demo, embedded brokers and device simulators: above everything, imported by nothing else."""

"""report: summary statistics of simulated sales."""

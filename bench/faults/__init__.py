"""The fault run's parts: supervised service processes, infrastructure restarts and the checks
of the money afterwards (`bench/fault_run.py` puts them together)."""

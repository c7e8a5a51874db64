"""Where the per-image work runs: in this process, a process pool, or Ray."""

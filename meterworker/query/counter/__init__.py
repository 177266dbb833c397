"""Counter mode: the exact growth of counters per window, from Prometheus' raw samples (pure logic)."""

"""NetWatch's processes (issue 10): probe workers, the alerting core, the supervisor of them all."""

"""Acting on the plan: readiness checks, ``strangler up``/``down``/``wait``, and exports."""

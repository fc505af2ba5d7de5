"""Shadow mode: mirror requests to the new service, compare, keep the evidence.

``compare`` (pure) finds differences between two responses; ``evidence`` (pure) folds
them into counts, separates real differences from noise and computes the release gate;
``mirror`` (I/O) runs the mirrored requests off the user's path; ``store`` persists the
evidence in the state store.
"""

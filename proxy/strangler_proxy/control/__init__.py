"""The control plane: the release controller, legacy activity, the admin API and the
control thread that runs their blocking work off the event loop.
"""

"""The ``digits-client`` command line: :mod:`~clients.cli.main` plus one module a subcommand."""

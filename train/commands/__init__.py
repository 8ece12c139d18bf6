"""The `kptrack` subcommands this package contributes (entry-point group ``kptrack.commands``)."""

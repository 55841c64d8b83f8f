"""One module per `vigie` subcommand; imported only when that subcommand runs."""

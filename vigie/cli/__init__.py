"""The `vigie` command: one thin module per subcommand (parse, call, print); `main` dispatches."""

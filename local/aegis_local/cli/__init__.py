"""`aegis-local`, the command line: `main` parses and dispatches; `ops` and `scan_account` add subcommands."""

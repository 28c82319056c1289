"""`aegis-local`, the command line: `main` parses and dispatches to the modules that register subcommands (`up`,
`phone`, `scan_account`, `ops`, and the demo in `aegis_local.scenario.demo`); `common` holds what they share."""

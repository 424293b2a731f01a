"""One thin module per subcommand: parse the command line, call one core function, render."""

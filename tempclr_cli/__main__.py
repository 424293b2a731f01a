from tempclr_cli.cli import main

main()

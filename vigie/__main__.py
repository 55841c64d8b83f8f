from vigie.cli.main import main

main()

from secmlops.cli.main import main

main()

from secmlops.cli.entry import main

main()

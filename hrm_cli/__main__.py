from hrm.cli.app import main

main()

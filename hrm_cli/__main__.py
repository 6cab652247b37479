from hrm_cli.app import main

main()

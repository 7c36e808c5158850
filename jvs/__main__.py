from jvs.cli.main import main

main()

from meterworker.cli import main

main()

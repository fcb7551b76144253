from flame_bench.cli.commands import main

main()

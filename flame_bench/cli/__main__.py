from flame_bench.cli import main

main()

from mnist_edge_runtime.cli import main

main()
